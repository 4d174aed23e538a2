/* Published pages (and the editor canvas): order-form total and pre-fill, countdowns.
   Loaded as a file so that pages need no inline script (Content-Security-Policy). */
(function () {
  "use strict";

  function orderForm(form) {
    var bump = form.querySelector("input[name=bump]");
    var total = form.querySelector(".of-total-amount");
    var action = (form.getAttribute("action") || "").split("?")[0];
    // A visitor who opted in earlier in the funnel finds their name and e-mail filled in.
    if (/\/order\/$/.test(action) && window.fetch) {
      fetch(action.replace(/order\/$/, "contact/"), { credentials: "same-origin" })
        .then(function (r) { return r.status === 200 ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          [["name", data.name], ["email", data.email]].forEach(function (pair) {
            var input = form.querySelector("input[name=" + pair[0] + "]");
            if (input && !input.value && pair[1]) input.value = pair[1];
          });
        })
        .catch(function () {});
    }
    if (!bump || !total) return;
    function update() {
      var cents = +total.dataset.base + (bump.checked ? +bump.dataset.price : 0);
      total.textContent = new Intl.NumberFormat(undefined, {
        style: "currency", currency: total.dataset.currency,
      }).format(cents / 100);
    }
    bump.addEventListener("change", update);
    if (bump.checked) update();
  }

  function countdown(el) {
    var end;
    if (el.dataset.mode === "fixed") {
      end = Date.parse(el.dataset.deadline + "Z");
    } else {
      var key = el.dataset.key;
      try { end = parseInt(localStorage.getItem(key), 10); } catch (e) { end = 0; }
      if (!end) {
        end = Date.now() + parseInt(el.dataset.minutes, 10) * 60000;
        try { localStorage.setItem(key, end); } catch (e) { /* private mode */ }
      }
    }
    function pad(n) { return String(n).padStart(2, "0"); }
    function tick() {
      var left = Math.max(0, Math.floor(((end || 0) - Date.now()) / 1000));
      el.querySelector("[data-u=h]").textContent = pad(Math.floor(left / 3600));
      el.querySelector("[data-u=m]").textContent = pad(Math.floor((left % 3600) / 60));
      el.querySelector("[data-u=s]").textContent = pad(left % 60);
      if (left > 0) setTimeout(tick, 1000);
    }
    tick();
  }

  function once(el, fn) {
    if (el.dataset.ofReady) return;
    el.dataset.ofReady = "1";
    fn(el);
  }

  function init(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll("form.of-order").forEach(function (f) { once(f, orderForm); });
    root.querySelectorAll(".of-countdown").forEach(function (c) { once(c, countdown); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
