/* Page builder glue: selection, keyboard, drag and drop, device preview, shortcuts.
   Every change goes to the server through htmx; this file only wires events. */
(function () {
  "use strict";
  var pb = document.getElementById("pb");
  if (!pb) return;
  var canvas = document.getElementById("canvas");
  var editUrl = pb.dataset.editUrl;

  function rev() { return document.getElementById("rev").value; }
  function blocks() { return Array.prototype.slice.call(canvas.querySelectorAll(".pb-block")); }
  function blockEl(id) { return id ? document.getElementById("block-" + id) : null; }

  var state = function (text, busy) {
    var el = document.getElementById("save-state");
    if (el) { el.textContent = text; el.classList.toggle("is-busy", !!busy); }
  };

  function select(id) {
    canvas.querySelectorAll(".pb-block.is-selected").forEach(function (el) { el.classList.remove("is-selected"); });
    var el = blockEl(id);
    if (el) el.classList.add("is-selected");
    var after = document.getElementById("palette-after");
    if (after) after.value = el ? id : "";
  }

  function currentSelection() {
    var form = document.getElementById("settings-form");
    if (!form) return "";
    var m = form.getAttribute("hx-target").match(/#block-(.+)$/);
    return m ? m[1] : "";
  }

  /* Block previews are not interactive on the canvas: their links, buttons,
     fields and frames leave the tab order so Tab goes block → toolbar → block. */
  function quietPreviews() {
    canvas.querySelectorAll(".pb-block-body a, .pb-block-body button, .pb-block-body input, .pb-block-body select, .pb-block-body textarea, .pb-block-body iframe, .pb-block-body summary, .pb-block-body output")
      .forEach(function (el) { el.setAttribute("tabindex", "-1"); });
  }

  function initSortable() {
    if (!window.Sortable) return;
    canvas.querySelectorAll(".of-col").forEach(function (col) {
      if (col._sortable) return;
      col._sortable = Sortable.create(col, {
        group: "blocks",
        handle: ".pb-drag",
        draggable: ".pb-block",
        animation: 150,
        ghostClass: "pb-ghost",
        onEnd: function (evt) {
          if (evt.from === evt.to && evt.oldDraggableIndex === evt.newDraggableIndex) return;
          htmx.ajax("POST", editUrl, {
            target: "#canvas", swap: "innerHTML",
            values: {
              action: "move_block", block_id: evt.item.dataset.id,
              column_id: evt.to.dataset.column, index: evt.newDraggableIndex, revision: rev()
            }
          });
        }
      });
    });
  }

  /* Open a block's settings and, when asked, put the focus on its first field. */
  function openSettings(id, focusField) {
    var el = blockEl(id);
    if (!el) return Promise.resolve();
    select(id);
    var body = el.querySelector(".pb-block-body");
    return htmx.ajax("GET", body.getAttribute("hx-get"), { target: "#settings-pane", swap: "innerHTML", source: body })
      .then(function () {
        if (!focusField) return;
        var field = document.querySelector("#settings-pane .pb-form input:not([type=hidden]), #settings-pane .pb-form textarea, #settings-pane .pb-form select");
        (field || document.getElementById("settings-pane")).focus();
      });
  }

  function post(values) {
    values.revision = rev();
    return htmx.ajax("POST", editUrl, { target: "#canvas", swap: "innerHTML", values: values, source: pb });
  }

  function focusBlock(id) {
    var el = blockEl(id);
    if (el) { el.focus(); return true; }
    return false;
  }

  var toast = document.getElementById("pb-toast");
  var toastTimer = null;
  function showToast(text) {
    if (!toast) return;
    document.getElementById("pb-toast-text").textContent = text;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.hidden = true; }, 8000);
  }
  if (toast) {
    document.getElementById("pb-toast-undo").addEventListener("click", function () {
      toast.hidden = true;
      var btn = document.getElementById("undo-btn");
      if (btn && !btn.disabled) btn.click();
    });
  }

  /* The canvas from the keyboard: ↑/↓ move the focus between blocks, Enter edits,
     Alt+↑/↓ moves the block, Delete removes it (undo brings it back). */
  canvas.addEventListener("keydown", function (e) {
    var el = e.target;
    if (!el.classList || !el.classList.contains("pb-block")) return;
    var list = blocks();
    var i = list.indexOf(el);
    var id = el.dataset.id;
    if ((e.key === "ArrowUp" || e.key === "ArrowDown") && e.altKey) {
      e.preventDefault();
      post({ action: e.key === "ArrowUp" ? "block_up" : "block_down", block_id: id }).then(function () {
        focusBlock(id);
        state("Moved " + (el.getAttribute("aria-label") || "block").split(":")[0].toLowerCase() + (e.key === "ArrowUp" ? " up" : " down"));
      });
    } else if (e.key === "ArrowUp" || e.key === "ArrowDown" || e.key === "Home" || e.key === "End") {
      e.preventDefault();
      var j = e.key === "Home" ? 0 : e.key === "End" ? list.length - 1 : i + (e.key === "ArrowUp" ? -1 : 1);
      if (j >= 0 && j < list.length) list[j].focus();
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      if (window.ofInline && window.ofInline.start(el)) return;
      openSettings(id, true);
    } else if (e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault();
      var neighbour = list[i + 1] || list[i - 1];
      var nextId = neighbour ? neighbour.dataset.id : null;
      var name = (el.getAttribute("aria-label") || "block").split(":")[0];
      post({ action: "delete_block", block_id: id }).then(function () {
        if (!focusBlock(nextId)) document.getElementById("stage").focus();
        state("Deleted " + name + ". Press Ctrl+Z to undo.");
        showToast("Deleted " + name + ".");
      });
    }
  });

  // Escape in the settings pane goes back to the block being edited.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    if (!e.target.closest || !e.target.closest("#settings-pane")) return;
    var id = currentSelection();
    if (id) { e.preventDefault(); focusBlock(id); }
  });

  // Links and forms inside the canvas are previews: never navigate away.
  // A click on a block's body selects it at once; its settings follow via htmx.
  canvas.addEventListener("click", function (e) {
    var a = e.target.closest(".pb-block-body a, .pb-block-body button");
    if (a) e.preventDefault();
    var body = e.target.closest(".pb-block-body");
    var block = body && body.closest(".pb-block");
    if (block && block.dataset.id) select(block.dataset.id);
  }, true);
  canvas.addEventListener("submit", function (e) {
    if (e.target.closest(".pb-block-body")) e.preventDefault();
  }, true);

  document.querySelectorAll(".pb-device").forEach(function (btn) {
    btn.addEventListener("click", function () {
      document.getElementById("pb-frame").dataset.device = btn.dataset.device;
      document.querySelectorAll(".pb-device").forEach(function (b) {
        var on = b === btn;
        b.classList.toggle("is-active", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
    });
  });

  // Forms that need a confirmation and alerts that can be dismissed (no inline JS).
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  }, true);
  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("[data-dismiss]");
    if (btn && btn.parentElement) btn.parentElement.remove();
  });

  // Publish: a dialog with each page's speed score and top fixes, then confirm.
  var dialog = document.getElementById("publish-dialog");
  document.addEventListener("click", function (e) {
    var open = e.target.closest && e.target.closest("[data-publish-dialog]");
    if (open && dialog && dialog.showModal) {
      e.preventDefault();
      var body = document.getElementById("publish-dialog-body");
      body.innerHTML = '<p class="muted">Measuring your pages…</p>';
      dialog.showModal();
      htmx.ajax("GET", open.getAttribute("href"), { target: "#publish-dialog-body", swap: "innerHTML", source: open })
        .then(function () {
          var first = document.getElementById("publish-confirm");
          if (first && !first.disabled) first.focus();
        });
      return;
    }
    var close = e.target.closest && e.target.closest("[data-close-dialog]");
    if (close && dialog && dialog.open) { e.preventDefault(); dialog.close(); }
  });

  document.body.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.requestConfig && e.detail.requestConfig.verb === "post") state("Saving…", true);
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    var cfg = e.detail.requestConfig;
    if (!cfg || cfg.verb !== "post") return;
    var xhr = e.detail.xhr;
    if (e.detail.successful && xhr && xhr.status < 400) { state("All changes saved", false); return; }
    if (xhr && xhr.status === 403) state("Not saved — your role cannot edit this page", false);
    else if (xhr && xhr.status >= 400) state("Not saved — the server refused the change", false);
    else state("Not saved — check your connection", false);
  });
  // A refused request says why in the alert slot instead of failing silently.
  document.body.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    var slot = document.getElementById("editor-alert");
    if (!slot || !xhr) return;
    var text = xhr.status === 403
      ? "Your role in this workspace can look at pages but not change them. Ask an owner or admin for editor access."
      : "The server could not save that change (" + xhr.status + "). Reload the page and try again.";
    slot.innerHTML = "";
    var div = document.createElement("div");
    div.className = "flash flash-error pb-alert";
    div.setAttribute("role", "alert");
    div.textContent = text;
    slot.appendChild(div);
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    initSortable();
    quietPreviews();
    select(currentSelection());
  });

  document.addEventListener("keydown", function (e) {
    if (!(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== "z") return;
    var t = e.target;
    if (t.closest("input, textarea, select, [contenteditable]")) return;
    e.preventDefault();
    var btn = document.getElementById(e.shiftKey ? "redo-btn" : "undo-btn");
    if (btn && !btn.disabled) btn.click();
  });

  initSortable();
  quietPreviews();
  select(currentSelection());
})();
