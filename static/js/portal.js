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
