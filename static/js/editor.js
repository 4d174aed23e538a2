/* Page builder glue: selection, drag and drop, device preview, shortcuts.
   Every change goes to the server through htmx; this file only wires events. */
(function () {
  "use strict";
  var pb = document.getElementById("pb");
  if (!pb) return;
  var canvas = document.getElementById("canvas");
  var editUrl = pb.dataset.editUrl;

  function rev() { return document.getElementById("rev").value; }

  function select(id) {
    canvas.querySelectorAll(".pb-block.is-selected").forEach(function (el) { el.classList.remove("is-selected"); });
    var el = id && document.getElementById("block-" + id);
    if (el) el.classList.add("is-selected");
    document.getElementById("palette-after").value = el ? id : "";
  }

  function currentSelection() {
    var form = document.getElementById("settings-form");
    if (!form) return "";
    var m = form.getAttribute("hx-target").match(/#block-(.+)$/);
    return m ? m[1] : "";
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

  // Links and forms inside the canvas are previews: never navigate away.
  canvas.addEventListener("click", function (e) {
    var a = e.target.closest(".pb-block-body a, .pb-block-body button");
    if (a && !a.classList.contains("of-video-poster")) e.preventDefault();
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

  var state = function (text, busy) {
    var el = document.getElementById("save-state");
    if (el) { el.textContent = text; el.classList.toggle("is-busy", !!busy); }
  };
  document.body.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.requestConfig && e.detail.requestConfig.verb === "post") state("Saving…", true);
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.requestConfig && e.detail.requestConfig.verb === "post") {
      state(e.detail.successful ? "All changes saved" : "Not saved — check your connection", false);
    }
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    initSortable();
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
  select(currentSelection());
})();
