/* In-place text editing on the builder canvas (Tiptap, static/vendor/tiptap.min.js).

   Click a headline, paragraph, button label or list item (or press Enter on a
   focused block) and type. A small bar offers bold, italic, link, lists,
   alignment and colour. What you type is saved as you pause (the server cleans
   it with the same sanitiser as the settings form); one typing session is one
   undo step. Esc or Enter (in one-line texts) finishes; so does leaving it. */
(function () {
  "use strict";
  var T = window.OFTiptap;
  var pb = document.getElementById("pb");
  var canvas = document.getElementById("canvas");
  if (!T || !pb || !canvas) return;

  var active = null;

  function rev() { return document.getElementById("rev").value; }
  function uid() { return Date.now().toString(36) + Math.random().toString(36).slice(2, 8); }

  function textblocks(editor) {
    var out = [];
    editor.state.doc.descendants(function (node) {
      if (node.isTextblock) { out.push(node.textContent.trim()); return false; }
      return true;
    });
    return out;
  }

  function valueOf(a) {
    if (a.mode === "plain") return textblocks(a.editor).join(" ").trim();
    if (a.mode === "lines") return textblocks(a.editor).filter(Boolean).join("\n");
    return a.editor.getHTML();
  }

  function contentFor(target, mode) {
    if (mode === "lines") {
      var items = Array.prototype.map.call(target.querySelectorAll("li"), function (li) {
        var p = document.createElement("p");
        p.textContent = li.textContent;
        return "<li>" + p.outerHTML + "</li>";
      });
      return "<ul>" + (items.join("") || "<li><p></p></li>") + "</ul>";
    }
    if (mode === "plain") {
      var p = document.createElement("p");
      p.textContent = target.textContent;
      return p.outerHTML;
    }
    return target.innerHTML;
  }

  function extensions(mode) {
    var kit = {
      heading: false, codeBlock: false, code: false, blockquote: false,
      horizontalRule: false, link: false, strike: false, underline: false,
      dropcursor: false, gapcursor: false, trailingNode: false
    };
    if (mode !== "rich" && mode !== "lines") {
      kit.bulletList = false; kit.orderedList = false; kit.listItem = false; kit.listKeymap = false;
    }
    if (mode === "lines") kit.orderedList = false;
    if (mode === "plain" || mode === "lines") { kit.bold = false; kit.italic = false; }
    var list = [T.StarterKit.configure(kit)];
    if (mode === "inline" || mode === "rich") {
      list.push(T.Link.configure({ openOnClick: false, autolink: true, defaultProtocol: "https" }));
      list.push(T.TextStyle, T.Color);
    }
    if (mode === "rich") list.push(T.TextAlign.configure({ types: ["paragraph"], alignments: ["left", "center", "right"] }));
    if (mode === "inline" || mode === "plain") {
      // One-line texts: Enter finishes instead of starting a new paragraph.
      list.push(T.Extension.create({
        name: "ofFinishOnEnter",
        addKeyboardShortcuts: function () {
          return { Enter: function () { finish(true); return true; } };
        }
      }));
    }
    return list;
  }

  /* The formatting bar ------------------------------------------------------ */

  function button(label, text, cmd, extra) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "pb-fmt-btn" + (extra ? " " + extra : "");
    b.setAttribute("aria-label", label);
    b.title = label;
    b.dataset.cmd = cmd;
    b.textContent = text;
    return b;
  }

  function themeColor(name, fallback) {
    var v = getComputedStyle(canvas).getPropertyValue(name).trim();
    return /^#[0-9a-f]{6}$/i.test(v) ? v : fallback;
  }

  function buildBar(a) {
    var bar = document.createElement("div");
    bar.className = "pb-fmt";
    bar.setAttribute("role", "toolbar");
    bar.setAttribute("aria-label", "Text formatting");
    var rich = a.mode === "inline" || a.mode === "rich";
    if (rich) {
      bar.appendChild(button("Bold", "B", "bold", "is-bold"));
      bar.appendChild(button("Italic", "I", "italic", "is-italic"));
      bar.appendChild(button("Link", "🔗", "link"));
    }
    if (a.mode === "rich") {
      bar.appendChild(button("Bulleted list", "•≡", "bulletList"));
      bar.appendChild(button("Numbered list", "1≡", "orderedList"));
    }
    if (a.mode !== "lines") {
      bar.appendChild(button("Align left", "⇤", "align-left"));
      bar.appendChild(button("Align center", "↔", "align-center"));
      bar.appendChild(button("Align right", "⇥", "align-right"));
    }
    if (rich) {
      var group = document.createElement("span");
      group.className = "pb-fmt-colors";
      [["Brand colour", themeColor("--of-primary", "#4f46e5")],
       ["Accent colour", themeColor("--of-accent", "#f59e0b")],
       ["Text colour", themeColor("--of-text", "#1f2937")]].forEach(function (c) {
        var b = button(c[0], "", "color", "pb-fmt-swatch");
        b.dataset.color = c[1];
        b.style.background = c[1];
        group.appendChild(b);
      });
      var pick = document.createElement("input");
      pick.type = "color";
      pick.className = "pb-fmt-pick";
      pick.value = "#e11d48";
      pick.setAttribute("aria-label", "Custom colour");
      group.appendChild(pick);
      group.appendChild(button("Remove colour", "⌀", "uncolor"));
      bar.appendChild(group);
    }
    bar.appendChild(button("Done editing (Esc)", "Done", "done", "pb-fmt-done"));

    bar.addEventListener("mousedown", function (e) {
      if (e.target.tagName !== "INPUT") e.preventDefault(); // keep the text selection
    });
    bar.addEventListener("click", function (e) {
      var b = e.target.closest("button");
      if (b) run(a, b.dataset.cmd, b.dataset.color);
    });
    bar.addEventListener("input", function (e) {
      if (e.target.type === "color") run(a, "color", e.target.value);
    });
    bar.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); finish(true); }
    });
    return bar;
  }

  function refreshBar(a) {
    a.bar.querySelectorAll("[data-cmd]").forEach(function (b) {
      var cmd = b.dataset.cmd, on = null;
      if (cmd === "bold" || cmd === "italic" || cmd === "link" || cmd === "bulletList" || cmd === "orderedList") {
        on = a.editor.isActive(cmd);
      } else if (cmd.indexOf("align-") === 0) {
        var side = cmd.slice(6);
        on = a.mode === "rich" ? a.editor.isActive({ textAlign: side }) : a.align === side;
      }
      if (on !== null) b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  function alignTarget(a) {
    return a.blockEl.querySelector(".pb-block-body [class*='of-align-']");
  }

  function currentAlign(a) {
    var el = alignTarget(a);
    var m = el && el.className.match(/of-align-(left|center|right)/);
    return m ? m[1] : "";
  }

  function run(a, cmd, color) {
    var chain = a.editor.chain().focus();
    if (cmd === "bold") chain.toggleBold().run();
    else if (cmd === "italic") chain.toggleItalic().run();
    else if (cmd === "bulletList") chain.toggleBulletList().run();
    else if (cmd === "orderedList") chain.toggleOrderedList().run();
    else if (cmd === "color") chain.setColor(color).run();
    else if (cmd === "uncolor") chain.unsetColor().run();
    else if (cmd === "link") {
      var current = a.editor.getAttributes("link").href || "";
      var href = window.prompt("Link address (https://…, mailto:… or tel:…). Leave empty to remove the link.", current);
      if (href === null) return;
      href = href.trim();
      if (!href) chain.extendMarkRange("link").unsetLink().run();
      else chain.extendMarkRange("link").setLink({ href: href }).run();
    } else if (cmd.indexOf("align-") === 0) {
      var side = cmd.slice(6);
      if (a.mode === "rich") chain.setTextAlign(side).run();
      else {
        a.align = side;
        var el = alignTarget(a);
        if (el) el.className = el.className.replace(/of-align-(left|center|right)/, "of-align-" + side);
        send(a, { field: "align", value: side }, false);
      }
    } else if (cmd === "done") { finish(true); return; }
    refreshBar(a);
  }

  /* Saving ------------------------------------------------------------------ */

  function send(a, values, final) {
    a.chain = a.chain.then(function () {
      values.session = a.session;
      values.revision = rev();
      var opts = { source: a.blockEl, values: values, swap: "none" };
      if (final) { opts.target = "#block-" + a.id; opts.swap = "outerHTML"; }
      return htmx.ajax("POST", a.url, opts);
    });
    return a.chain;
  }

  function save(a, final) {
    var value = valueOf(a);
    if (value === a.lastSent && !final) return a.chain;
    if (final && value === a.initial && a.lastSent === a.initial) return null;
    a.lastSent = value;
    return send(a, { field: a.field, value: value }, final);
  }

  /* Start and finish ---------------------------------------------------------- */

  function start(blockEl, clickEvent) {
    var target = blockEl.querySelector(".pb-block-body [data-inplace]");
    if (!target) return false;
    if (active && active.target === target) return true;
    if (active) finish(false);
    var mode = target.dataset.mode;
    var a = {
      id: blockEl.dataset.id, blockEl: blockEl, target: target, mode: mode,
      field: target.dataset.inplace, url: blockEl.dataset.textUrl,
      session: uid(), chain: Promise.resolve(), original: target.innerHTML
    };
    a.align = currentAlign(a);
    var content = contentFor(target, mode);
    target.innerHTML = "";
    target.classList.add("pb-inplace");
    a.editor = new T.Editor({
      element: target,
      extensions: extensions(mode),
      content: content,
      autofocus: "end",
      editorProps: { attributes: { "aria-label": (blockEl.getAttribute("aria-label") || "Text").split(":")[0] + " text", "role": "textbox", "aria-multiline": mode === "rich" || mode === "lines" ? "true" : "false" } }
    });
    a.initial = valueOf(a);
    a.lastSent = a.initial;
    a.bar = buildBar(a);
    blockEl.appendChild(a.bar);
    blockEl.classList.add("is-editing");
    a.editor.on("update", function () {
      clearTimeout(a.timer);
      a.timer = setTimeout(function () { save(a, false); }, 600);
      refreshBar(a);
    });
    a.editor.on("selectionUpdate", function () { refreshBar(a); });
    a.onKey = function (e) {
      if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); finish(true); }
    };
    target.addEventListener("keydown", a.onKey, true);
    a.onFocusOut = function () {
      setTimeout(function () {
        if (active !== a) return;
        var f = document.activeElement;
        if (f && (a.target.contains(f) || a.bar.contains(f))) return;
        finish(false);
      }, 0);
    };
    target.addEventListener("focusout", a.onFocusOut);
    a.bar.addEventListener("focusout", a.onFocusOut);
    active = a;
    refreshBar(a);
    return true;
  }

  function finish(refocus) {
    var a = active;
    if (!a) return;
    active = null;
    clearTimeout(a.timer);
    var done = save(a, true);
    a.target.removeEventListener("keydown", a.onKey, true);
    if (done === null) {
      a.editor.destroy();
      a.target.innerHTML = a.original;
      a.target.classList.remove("pb-inplace");
      a.bar.remove();
      a.blockEl.classList.remove("is-editing");
      if (refocus) a.blockEl.focus();
      return;
    }
    done.then(function () {
      a.editor.destroy();
      var fresh = document.getElementById("block-" + a.id);
      if (refocus && fresh) fresh.focus();
      // The settings pane shows the saved text, not what it had before.
      var form = document.getElementById("settings-form");
      if (fresh && form && form.getAttribute("hx-target") === "#block-" + a.id) {
        var body = fresh.querySelector(".pb-block-body");
        htmx.ajax("GET", body.getAttribute("hx-get"), { target: "#settings-pane", swap: "innerHTML", source: body });
      }
    });
  }

  // Clicks inside the text being edited place the caret; they do not reload
  // the block's settings.
  canvas.addEventListener("click", function (e) {
    if (active && active.target.contains(e.target)) e.stopPropagation();
  }, true);

  canvas.addEventListener("click", function (e) {
    var target = e.target.closest && e.target.closest(".pb-block-body [data-inplace]");
    if (!target) return;
    var blockEl = target.closest(".pb-block");
    if (blockEl) start(blockEl, e);
  });

  window.ofInline = { start: start, finish: finish, isActive: function () { return !!active; } };
})();
