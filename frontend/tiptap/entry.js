// The in-place text editor bundle (static/vendor/tiptap.min.js).
// Rebuild: see README.md beside this file.
import { Editor, Extension } from "@tiptap/core";
import StarterKit from "@tiptap/starter-kit";
import Link from "@tiptap/extension-link";
import TextAlign from "@tiptap/extension-text-align";
import { TextStyle } from "@tiptap/extension-text-style";
import { Color } from "@tiptap/extension-color";

window.OFTiptap = { Editor, Extension, StarterKit, Link, TextAlign, TextStyle, Color };
