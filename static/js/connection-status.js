// A banner that says when the live connection (Socket.IO) is refused by the server, lost, or back again.
// Include it right after the Socket.IO client: it wraps io(), so every page's socket is watched without any change
// to the pages' own scripts. ConnectionStatus.watch(socket) does the same for a socket made some other way.
// A refusal (too many connections from one address, say) carries the server's reason in err.message; the client
// does not retry a refusal by itself, so the banner offers "Try again".
"use strict";

(() => {
  if (window.ConnectionStatus || typeof window.io !== "function") return; // included twice, or no Socket.IO client

  const STYLE = `
    .connection-status { position: fixed; left: .5rem; right: .5rem; bottom: .5rem; z-index: 1000; display: flex;
      gap: .6rem; align-items: center; flex-wrap: wrap; max-width: 40rem; margin: 0 auto; padding: .55rem .8rem;
      border-radius: .5rem; color: #fff; background: #1d2330; box-shadow: 0 4px 16px rgba(0,0,0,.25);
      font-size: .95rem; overflow-wrap: anywhere; }
    .connection-status[data-kind="refused"] { background: #c4372d; }
    .connection-status[data-kind="back"] { background: #1a8f4c; }
    .connection-status span { flex: 1 1 12rem; }
    .connection-status button { color: inherit; background: transparent; border: 1px solid currentColor; }`;
  const BACK_SHOWN_MS = 3000; // "Connected again" stays this long, then the banner goes
  let banner = null;

  function element() {
    if (banner) return banner;
    const style = document.createElement("style");
    style.textContent = STYLE;
    document.head.appendChild(style);
    banner = document.createElement("div");
    banner.className = "connection-status";
    banner.hidden = true;
    banner.appendChild(document.createElement("span"));
    document.body.appendChild(banner);
    return banner;
  }

  // kind: "refused" (the server said no, or closed the connection: nothing retries by itself), "lost", "back"
  function show(text, kind, retry = null) {
    const box = element();
    box.dataset.kind = kind;
    box.setAttribute("role", kind === "refused" ? "alert" : "status");
    box.firstChild.textContent = text;
    box.querySelector("button")?.remove();
    if (retry) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Try again";
      button.addEventListener("click", () => { show("Connecting…", "lost"); retry(); });
      box.appendChild(button);
    }
    box.hidden = false;
  }

  function hide() { if (banner) banner.hidden = true; }

  function watch(socket) {
    let troubled = false; // a refusal or a loss is on screen: say so when the connection is back
    socket.on("connect_error", (err) => {
      troubled = true;
      if (!socket.active) { // refused by the server: err.message is its reason
        show(`The live connection was refused: ${err && err.message ? err.message : "no reason given"}`, "refused",
          () => socket.connect());
      } else {
        show("The live connection is lost: trying again…", "lost");
      }
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io client disconnect") return; // the page closed it on purpose
      troubled = true;
      if (socket.active) show("The live connection is lost: trying again…", "lost");
      else show("The server closed the live connection.", "refused", () => socket.connect());
    });
    socket.on("connect", () => {
      if (!troubled) return;
      troubled = false;
      show("Connected again.", "back");
      setTimeout(() => { if (socket.connected && banner && banner.dataset.kind === "back") hide(); }, BACK_SHOWN_MS);
    });
    return socket;
  }

  const original = window.io;
  const wrapped = (...args) => watch(original(...args));
  Object.assign(wrapped, original, { connect: wrapped, io: wrapped }); // io.Manager, io.Socket, io.protocol stay
  window.io = wrapped;
  window.ConnectionStatus = { watch };
})();
