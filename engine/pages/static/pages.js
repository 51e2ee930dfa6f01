// Small enhancements only: every page works without this file (copy buttons, auto-submit on six digits
// where the code is the form's only field).
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) { return; }
      var text = Array.prototype.map.call(source.querySelectorAll("code"), function (c) { return c.textContent; });
      navigator.clipboard.writeText(text.length ? text.join("\n") : source.textContent).then(function () {
        button.textContent = button.getAttribute("data-copied");
      });
    });
  });
  document.querySelectorAll("input[data-autosubmit]").forEach(function (input) {
    // Only where the code is the form's one choice: a checkbox (remember this browser) comes after it.
    if (input.form && input.form.querySelector("input[type=checkbox]")) { return; }
    var length = parseInt(input.getAttribute("data-autosubmit"), 10);
    input.addEventListener("input", function () {
      if (/^[0-9]+$/.test(input.value) && input.value.length === length && input.form && !input.form.dataset.sent) {
        input.form.dataset.sent = "1";
        input.form.requestSubmit ? input.form.requestSubmit() : input.form.submit();
      }
    });
  });
});
