// A select marked data-autosubmit sends its form when changed (the button stays for
// browsers without script); a static file, as the CSP allows no inline handler.
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
