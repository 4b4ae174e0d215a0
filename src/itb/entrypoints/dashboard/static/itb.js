// itb dashboard: progressive enhancement only. Every page works without this script.
// The radar's filters apply as soon as one is picked (the Apply button stays for
// keyboard and script-free use).
document.addEventListener("change", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.type === "radio" && input.form && input.form.classList.contains("filters")) {
    input.form.requestSubmit();
  }
});
