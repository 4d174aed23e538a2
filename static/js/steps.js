/* The funnel's steps list: drag and drop sends the whole new order; the server
   re-renders the steps region, after which the list is made sortable again. */
(function () {
  "use strict";
  function init() {
    var list = document.getElementById("step-list");
    if (list && !list.dataset.sortable && window.Sortable) {
      list.dataset.sortable = "1";
      Sortable.create(list, {
        handle: ".fn-step-row", filter: "button, a, input, select, summary", preventOnFilter: false,
        animation: 150, forceFallback: true, ghostClass: "is-ghost", chosenClass: "is-chosen",
        onEnd: function (evt) {
          if (evt.oldIndex === evt.newIndex) return;
          var order = Array.prototype.map.call(list.children, function (li) { return li.dataset.id; }).join(",");
          htmx.ajax("POST", list.dataset.reorderUrl, { target: "#steps", swap: "outerHTML", values: { order: order } });
        },
      });
    }
    // Keyboard reordering keeps focus on the button that was pressed.
    var region = document.getElementById("steps");
    if (region && region.dataset.focus) {
      var el = document.getElementById(region.dataset.focus);
      if (el && el.disabled) el = el.parentElement.querySelector("button:not([disabled])");
      if (el) el.focus();
      delete region.dataset.focus;
    }
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:load", init);
  document.addEventListener("htmx:afterSettle", init);
})();
