/* Small behaviours of the admin pages, wired by data- attributes so that pages need
   no inline script (the admin's Content-Security-Policy allows only these files).

   data-confirm="Question?"   on a form: ask before it is submitted
   data-autosubmit            on a field: submit its form when it changes
   data-dismiss               on a button: remove the element around it
   data-toggle="#id"          on a button: toggle the "open" class of #id
   data-copy="text"           on a button: copy the text, say "Copied"
   data-check-all=".selector" on a checkbox: tick or untick every match
   data-slug-from="#id"       on an input: suggest a URL slug from #id's value
   .sp-weight inputs          split-test weights: show the normalised shares */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("[data-autosubmit]") && field.form) {
      if (field.form.requestSubmit) field.form.requestSubmit();
      else field.form.submit();
    }
    if (field.matches && field.matches("[data-check-all]")) {
      document.querySelectorAll(field.dataset.checkAll).forEach(function (box) {
        box.checked = field.checked;
      });
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-dismiss], [data-toggle], [data-copy]");
    if (!button) return;
    if (button.hasAttribute("data-dismiss")) {
      button.parentElement.remove();
    } else if (button.hasAttribute("data-toggle")) {
      var target = document.querySelector(button.dataset.toggle);
      if (target) {
        var open = target.classList.toggle("open");
        button.setAttribute("aria-expanded", open ? "true" : "false");
      }
    } else if (button.hasAttribute("data-copy")) {
      if (navigator.clipboard) navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
    }
  });

  function slugify(value) {
    return value.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9\s-]/g, "").trim().replace(/[\s-]+/g, "-").slice(0, 80);
  }

  function splitShares() {
    var inputs = Array.prototype.slice.call(document.querySelectorAll(".sp-weight"));
    if (!inputs.length) return;
    function update() {
      var values = inputs.map(function (i) { return Math.max(0, parseInt(i.value, 10) || 0); });
      var total = values.reduce(function (a, b) { return a + b; }, 0);
      inputs.forEach(function (input, k) {
        var out = document.querySelector('.sp-share-pct[data-for="' + input.id + '"]');
        if (!out) return;
        var share = total ? (100 * values[k]) / total : 0;
        out.textContent = share.toFixed(1) + " %";
        var bar = out.parentElement.querySelector(".sp-share-bar span");
        if (bar) bar.style.width = share + "%";
      });
      var summary = document.getElementById("split-summary");
      if (summary && !total) summary.textContent = "At least one variant needs a weight above 0.";
    }
    inputs.forEach(function (i) { i.addEventListener("input", update); });
  }

  function init() {
    document.querySelectorAll("input[data-slug-from]").forEach(function (slug) {
      var name = document.querySelector(slug.dataset.slugFrom);
      if (!name) return;
      var touched = slug.value !== "";
      slug.addEventListener("input", function () { touched = slug.value !== ""; });
      name.addEventListener("input", function () { if (!touched) slug.value = slugify(name.value); });
    });
    splitShares();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
