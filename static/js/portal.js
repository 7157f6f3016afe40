// Small progressive enhancements; every page works without this file.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-dialog-open]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.dialogOpen);
    if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
  }
  const closer = event.target.closest("[data-dialog-close]");
  if (closer) { closer.closest("dialog")?.close(); }
});
// "Go back" on the refusal page: a button, since a javascript: link is refused by the Content-Security-Policy.
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-history-back]")) history.back();
});
// Filter forms: submit on change (htmx takes it over when present).
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-autosubmit]");
  if (form && !window.htmx) form.requestSubmit();
});
// Cart: the attestation names the reseller chosen in the list, saved or not (the purchase sends it).
document.addEventListener("change", (event) => {
  if (event.target.name !== "reseller" || event.target.getAttribute("form") !== "purchase-form") return;
  const role = document.getElementById("attest-role");
  if (!role) return;
  const option = event.target.selectedOptions[0];
  role.textContent = option && option.value
    ? role.dataset.indirect.replace("{name}", option.textContent.replace(/ \(.*$/, ""))
    : role.dataset.direct;
});

// Side panels ("Change licenses", "Manage renewal", "Check upgrades", "Convert trial"): sections of the
// page (or, for the last two, pages of their own) that slide in from the right when their command-bar
// button is used. A panel with data-panel-src loads its content with htmx. Focus moves into the panel;
// Esc, the close button or the backdrop closes it and focus returns to the button. Without this file the
// buttons are plain links to the sections and pages, which work the same.
(() => {
  let opener = null;
  const backdrop = document.createElement("div");
  backdrop.className = "panel-backdrop";
  backdrop.addEventListener("click", () => closePanel());

  function openPanel(panel, from) {
    document.querySelectorAll(".side-panel.open").forEach((other) => other !== panel && other.classList.remove("open"));
    if (!panel.querySelector(".panel-close")) {
      const close = document.createElement("button");
      close.type = "button";
      close.className = "panel-close";
      close.setAttribute("aria-label", "Close panel");
      close.textContent = "×";
      panel.prepend(close);
    }
    if (!backdrop.isConnected) document.body.append(backdrop);
    panel.classList.add("open");
    panel.setAttribute("role", "dialog");
    document.body.classList.add("panel-shown");
    opener = from || opener;
    focusInto(panel);
  }

  function focusInto(panel) {
    const heading = panel.querySelector("h1, h2");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }

  function closePanel() {
    const panel = document.querySelector(".side-panel.open");
    if (!panel) return;
    panel.classList.remove("open");
    panel.removeAttribute("role");
    document.body.classList.remove("panel-shown");
    backdrop.remove();
    if (opener && opener.isConnected) opener.focus();
    opener = null;
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-panel-open]");
    if (button) {
      const panel = document.getElementById(button.dataset.panelOpen);
      if (!panel) return;
      event.preventDefault();
      const src = button.dataset.panelSrc;
      const body = panel.querySelector(".side-panel-body");
      if (src && body && window.htmx) {
        htmx.ajax("GET", src, { target: body, swap: "innerHTML", select: "[data-panel-root]" })
          .then(() => openPanel(panel, button));
      } else {
        openPanel(panel, button);
      }
      return;
    }
    const close = event.target.closest(".panel-close, .side-panel.open [data-panel-close]");
    if (close) {
      event.preventDefault();
      closePanel();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !document.querySelector("dialog[open]")) closePanel();
  });

  // Content swapped into an open panel (a preview, a refusal) keeps the focus inside it.
  document.addEventListener("htmx:afterSettle", (event) => {
    const panel = event.target.closest && event.target.closest(".side-panel.open");
    if (panel && !panel.contains(document.activeElement)) focusInto(panel);
  });

  // A page answered with a panel's outcome (a refusal, a preview, or #manage-renewal after a change)
  // shows that panel open.
  document.addEventListener("DOMContentLoaded", () => {
    const hashed = location.hash && document.getElementById(location.hash.slice(1));
    const panel = document.querySelector(".side-panel[data-start-open]")
      || (hashed && hashed.closest(".side-panel"));
    if (panel) openPanel(panel, document.querySelector(`[data-panel-open="${panel.id}"]`));
  });
})();
