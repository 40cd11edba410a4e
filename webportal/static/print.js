// Print buttons on the printable pages (a file, not an onclick attribute: the CSP allows no inline script).
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
