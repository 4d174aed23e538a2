/* Click-to-play video: nothing loads from the video's host until the visitor
   clicks the local placeholder (no thumbnail, no player, no cookies before). */
(function () {
  "use strict";
  if (window.ofVideo) return;
  window.ofVideo = true;
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest(".of-video-poster");
    if (!b || b.closest(".pb-block-body")) return;
    var el;
    if (b.dataset.kind === "mp4") {
      el = document.createElement("video");
      el.controls = true;
      el.autoplay = true;
      el.src = b.dataset.embed;
    } else {
      el = document.createElement("iframe");
      el.src = b.dataset.embed;
      el.title = b.dataset.title || "Video";
      el.allow = "autoplay; fullscreen; picture-in-picture";
      el.allowFullscreen = true;
    }
    el.className = "of-video-frame";
    b.replaceWith(el);
  });
})();
