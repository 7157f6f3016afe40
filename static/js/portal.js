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
// A phone's Menu button (base.html): shows and hides the main navigation and the user menu. Without this file
// both stay shown, stacked above the content (portal.css).
document.addEventListener("click", (event) => {
  const toggle = event.target.closest(".nav-toggle");
  if (!toggle) return;
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("nav-open", open);
});
// Esc closes the open menu, the focus back on its button (a side panel or a dialog open above it closes first).
document.addEventListener("keydown", (event) => {
  const toggle = document.querySelector(".nav-toggle[aria-expanded=true]");
  if (event.key !== "Escape" || !toggle || document.querySelector(".side-panel.open, dialog[open]")) return;
  toggle.setAttribute("aria-expanded", "false");
  document.body.classList.remove("nav-open");
  toggle.focus();
});
// Phones: a list drawn as cards (portal.css) names each value by its column. Cells the template labels itself
// (data-label: the subscription lists, without JavaScript too) keep theirs; the others take their column's header.
function labelCells(root) {
  const within = root.closest && root.closest("table.list");
  const tables = within ? [within] : root.querySelectorAll ? root.querySelectorAll("table.list") : [];
  tables.forEach((table) => {
    const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    if (!headers.length) return;
    table.querySelectorAll("tbody tr").forEach((row) => {
      let column = 0;
      [...row.cells].forEach((cell) => {
        if (headers[column] && !cell.hasAttribute("data-label")) cell.dataset.label = headers[column];
        column += cell.colSpan || 1;
      });
    });
  });
}
document.addEventListener("DOMContentLoaded", () => labelCells(document));
document.addEventListener("htmx:afterSettle", (event) => labelCells(event.target));
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

// Exactly once (portal/versions.py): a part of the page redrawn by htmx after a change made from this page carries
// the object's new version; the page's other forms for that object take it, so a next change made from this page
// isn't refused as stale. Only after a change that succeeded (a 2xx answer to a POST): a panel drawn by a GET (the
// renewal draft, the quantity preview) or redrawn with a refusal (409: someone else changed it) shows the object as
// it is now in that panel alone, and the rest of the page, still showing the older state, must stay refused.
// On afterSwap, not afterSettle (20 ms later): the next queued request (below) is sent in between.
function takeNewVersions(event) {
  const { requestConfig, xhr } = event.detail;
  if (!requestConfig || requestConfig.verb === "get" || !xhr || xhr.status < 200 || xhr.status > 299) return;
  const root = event.target;
  if (!root.querySelectorAll) return;
  const fresh = [...(root.matches("input[data-version-of]") ? [root] : []), ...root.querySelectorAll("input[data-version-of]")];
  fresh.forEach((input) => {
    document.querySelectorAll(`input[data-version-of="${input.dataset.versionOf}"]`).forEach((other) => {
      other.value = input.value;
    });
  });
}
document.addEventListener("htmx:afterSwap", takeNewVersions);

// Forms that change one object from several places of a page (data-queue: the catalog's "Add to cart" on every
// card) send one request at a time, in order, each with the version the one before it left: sent together they
// would carry the same version and all but the first be refused (409). A form already sent or waiting isn't sent
// again (a double click on one card adds it once). htmx's own hx-sync queue can't tell a second click on the same
// card from the first one coming off its queue, so this queue is kept here, from htmx:confirm.
(() => {
  const waiting = [];
  let sending = null;
  // Every way a sent request ends: answered or failed (afterRequest), or stopped before it left. Heard on the form
  // itself: a form redrawn away while its request was out (a filter changed) gets them detached from the page,
  // where they reach no listener on the document.
  const ENDS = ["htmx:afterRequest", "htmx:validation:halted", "htmx:invalidPath", "htmx:targetError"];

  function sendNext() {
    // A card redrawn meanwhile is gone: htmx would drop its request without a word.
    do {
      sending = waiting.shift() || null;
      if (sending && !sending.form.isConnected) delete sending.form.dataset.queued;
    } while (sending && !sending.form.isConnected);
    if (!sending) return;
    const { form } = sending;
    // The cart's new version, swapped into a card redrawn away meanwhile: still the page's to take (the redrawn
    // cards were drawn before this change), though its afterSwap no longer reaches the document.
    const detachedSwap = (event) => { if (!form.isConnected) takeNewVersions(event); };
    const done = () => {
      ENDS.forEach((name) => form.removeEventListener(name, done));
      form.removeEventListener("htmx:afterSwap", detachedSwap);
      delete form.dataset.queued;
      if (sending && sending.form === form) sendNext();
    };
    ENDS.forEach((name) => form.addEventListener(name, done));
    form.addEventListener("htmx:afterSwap", detachedSwap);
    sending.issue(true);
  }

  document.addEventListener("htmx:confirm", (event) => {
    const form = event.detail.elt;
    if (!form.matches || !form.matches("form[data-queue]")) return;
    event.preventDefault();  // sent from the queue, with issueRequest
    if (form.dataset.queued) return;
    form.dataset.queued = "1";
    waiting.push({ form, issue: event.detail.issueRequest });
    if (!sending) sendNext();
  });
})();

// Irreversible confirmations (data-submit-once: "Yes, upgrade", "Convert trial", "Purchase", "Cancel
// subscription", "Transfer selected subscriptions"): once sent, their buttons are disabled and say so, so a second
// click sends nothing. The server refuses a repeat anyway (the form's version); this spares the person the 409.
// A refusal swapped in by htmx redraws the form, buttons enabled again.
function sentOnce(form) {
  form.dataset.submitted = "1";
  // After this event: disabling the button now would drop its own name/value from what the form sends.
  setTimeout(() => form.querySelectorAll("button[type=submit], button:not([type])").forEach((button) => {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }));
}
document.addEventListener("submit", (event) => {
  const form = event.target;
  // A submit htmx took over (prevented) is judged at htmx:confirm below.
  if (!form.matches || !form.matches("form[data-submit-once]") || event.defaultPrevented) return;
  if (form.dataset.submitted) { event.preventDefault(); return; }
  sentOnce(form);
});
// The same form sent by htmx ("Yes, upgrade" and "Convert trial" in their side panels, hx-boost): htmx handles the
// submit before this file sees it, and a second click would be queued behind the first and sent once it is
// answered; htmx:confirm comes before that queue, so a form already sent is dropped there.
document.addEventListener("htmx:confirm", (event) => {
  const form = event.detail.elt;
  if (!form.matches || !form.matches("form[data-submit-once]")) return;
  if (form.dataset.submitted) { event.preventDefault(); return; }
  sentOnce(form);
});
// A page shown again from the back-forward cache is a new chance to submit (the server judges its version).
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll("form[data-submit-once]").forEach((form) => {
    delete form.dataset.submitted;
    form.querySelectorAll("button[aria-busy]").forEach((button) => {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  });
});
// Search results (portal/search.html): the Down and Up arrow keys move from the search box through the results'
// links (every group, in page order) and back; Enter opens one. Tab reaches them too, without this file.
document.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  // Not while an input method composes (picking a Chinese word), nor with a modifier (the browser's own keys).
  if (event.isComposing || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const from = event.target.closest("[data-search-input], a[data-result]");
  if (!from) return;
  const links = [...document.querySelectorAll("[data-search-results] a[data-result]")];
  if (!links.length) return;
  const at = links.indexOf(from);
  let next;
  if (event.key === "ArrowDown") next = at < 0 ? links[0] : links[Math.min(at + 1, links.length - 1)];
  else next = at <= 0 ? document.querySelector("[data-search-input]") : links[at - 1];
  if (!next) return;
  event.preventDefault();
  next.focus();
});
