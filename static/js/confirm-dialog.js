// A small "are you sure?" question in a native <dialog>: Escape or Cancel says no, the confirm button says yes.
"use strict";

window.ConfirmDialog = (() => {
  let dialog = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
    dialog.setAttribute("aria-describedby", "confirm-dialog-message");
    dialog.innerHTML = `
      <form method="dialog">
        <h2 id="confirm-dialog-title"></h2>
        <p id="confirm-dialog-message"></p>
        <div class="row confirm-dialog-buttons">
          <button type="submit" value="cancel" data-answer="cancel">Cancel</button>
          <button type="submit" value="confirm" data-answer="confirm" class="primary"></button>
        </div>
      </form>`;
    document.body.append(dialog);
  }

  // ask({title, message, confirm}) -> Promise<boolean>: true only when the confirm button was chosen.
  function ask({ title = "Are you sure?", message = "", confirm = "OK" } = {}) {
    if (!dialog) build();
    if (dialog.open) dialog.close("cancel");
    dialog.querySelector("#confirm-dialog-title").textContent = title;
    dialog.querySelector("#confirm-dialog-message").textContent = message;
    dialog.querySelector("[data-answer=confirm]").textContent = confirm;
    dialog.returnValue = "";
    const opener = document.activeElement;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        opener?.focus?.(); // back to the button that asked, for keyboard users
        resolve(dialog.returnValue === "confirm");
      }, { once: true });
      dialog.showModal();
      dialog.querySelector("[data-answer=cancel]").focus(); // the safe choice is the default
    });
  }

  return { ask };
})();
