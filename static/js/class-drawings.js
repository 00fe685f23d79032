// Filing a drawing into one of the class's datasets: over the page's Socket.IO connection when it is up
// (`add_drawing`), else with POST /api/datasets/<id>/drawings. Both answer the same JSON, or {error}.
"use strict";

window.ClassDrawings = {
  // add(socket, {dataset, image, label, guess}) -> Promise of the server's answer
  // ({drawing, counts, total, next_label} or {error, status}); `client` is this browser's anonymous id.
  add(socket, { dataset, image, label, guess = null }) {
    const body = { image, label, guess, client: ClientId.get() };
    return new Promise((resolve) => {
      if (socket && socket.connected) {
        socket.timeout(10000).emit("add_drawing", { dataset, ...body }, (err, answer) =>
          resolve(err ? { error: "the server did not answer" } : answer || { error: "no answer" }));
        return;
      }
      fetch(`/api/datasets/${encodeURIComponent(dataset)}/drawings`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      }).then((r) => r.json().catch(() => ({ error: `error ${r.status}` })))
        .then(resolve, () => resolve({ error: "the server cannot be reached" }));
    });
  },
};
