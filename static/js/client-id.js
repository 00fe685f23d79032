// The anonymous id of this browser: random, kept in localStorage, sent as the `client` of every drawing it files.
// It says which drawings came from the same browser, never who drew them.
"use strict";

window.ClientId = (() => {
  const KEY = "neuronlab-client";
  const VALID = /^[A-Za-z0-9_-]{8,64}$/; // what the server accepts

  function fresh() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  let id = null;
  function get() {
    if (id) return id;
    try {
      id = localStorage.getItem(KEY);
      if (!id || !VALID.test(id)) { id = fresh(); localStorage.setItem(KEY, id); }
    } catch (err) {
      id = id && VALID.test(id) ? id : fresh(); // private mode without storage: one id for this page's life
    }
    return id;
  }

  // The short form people see on /data ("a3f9c1"), enough to tell a class's browsers apart.
  function short(client) { return String(client || "").slice(0, 6); }

  return { get, short };
})();
