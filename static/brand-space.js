// Brand space: a "Copy" button for a secret shown once, and forms that send only once.
// Everything works without this file: the secret can be selected and copied by hand, and
// the server ignores a form sent twice.
(function () {
  "use strict";

  function setUpCopyButton(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    var status = button.parentNode.querySelector(".copy-status");
    if (!target || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () {
          if (status) { status.textContent = status.getAttribute("data-copied"); }
        },
        function () {
          if (status) { status.textContent = status.getAttribute("data-failed"); }
        }
      );
    });
  }

  function sendOnce(form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent") === "yes") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "yes");
      var buttons = form.querySelectorAll("button[type=submit]");
      for (var i = 0; i < buttons.length; i += 1) {
        buttons[i].setAttribute("aria-disabled", "true");
      }
    });
  }

  // A page brought back by the Back button may be sent again (the server decides).
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    var sent = document.querySelectorAll("form.once[data-sent]");
    for (var i = 0; i < sent.length; i += 1) {
      sent[i].removeAttribute("data-sent");
      var buttons = sent[i].querySelectorAll("button[aria-disabled]");
      for (var j = 0; j < buttons.length; j += 1) { buttons[j].removeAttribute("aria-disabled"); }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-copy-target]");
    for (var i = 0; i < buttons.length; i += 1) { setUpCopyButton(buttons[i]); }
    var forms = document.querySelectorAll("form.once");
    for (var j = 0; j < forms.length; j += 1) { sendOnce(forms[j]); }
  });
}());
