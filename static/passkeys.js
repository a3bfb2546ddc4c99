/* Passkey ceremonies (WebAuthn) for the forms marked data-passkey="create" or "get".
 *
 * The form names an endpoint (data-passkey-options) that answers a POST with the WebAuthn
 * options as JSON; this script calls the browser with them, writes the browser's answer
 * as JSON into the form's hidden credential field and submits the form: the server checks
 * it and answers with a normal page. A form with data-passkey-autofill also offers the
 * passkeys in the browser's autofill of the email field (conditional mediation).
 *
 * Only the ceremony needs this script; without JavaScript or WebAuthn the buttons stay
 * hidden and the page says so. Messages come translated from data- attributes of the
 * [data-passkey-status] element. No inline script: the Content-Security-Policy forbids it.
 */
(function () {
  "use strict";

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBuffer(item.id) });
    });
  }

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      user: Object.assign({}, json.user, { id: toBuffer(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      allowCredentials: descriptors(json.allowCredentials),
    });
  }

  function extensions(credential) {
    return credential.getClientExtensionResults ? credential.getClientExtensionResults() : {};
  }

  function registrationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: extensions(credential),
      response: {
        clientDataJSON: toText(response.clientDataJSON),
        attestationObject: toText(response.attestationObject),
        transports: response.getTransports ? response.getTransports() : [],
      },
    };
  }

  function authenticationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: extensions(credential),
      response: {
        clientDataJSON: toText(response.clientDataJSON),
        authenticatorData: toText(response.authenticatorData),
        signature: toText(response.signature),
        userHandle: toText(response.userHandle),
      },
    };
  }

  function say(form, key) {
    var status = form.querySelector("[data-passkey-status]");
    if (status) {
      status.textContent = key ? status.getAttribute("data-" + key) || "" : "";
    }
  }

  function field(form, names) {
    for (var i = 0; i < names.length; i += 1) {
      var found = form.querySelector('input[name="' + names[i] + '"]');
      if (found) {
        return found;
      }
    }
    return null;
  }

  function fetchOptions(form) {
    var token = field(form, ["csrf_token"]);
    return window
      .fetch(form.getAttribute("data-passkey-options"), {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": token ? token.value : "" },
      })
      .then(function (response) {
        if (!response.ok) {
          var error = new Error("options: HTTP " + response.status);
          error.name = "OptionsError";
          throw error;
        }
        return response.json();
      });
  }

  function submitWith(form, answer) {
    field(form, ["credential", "passkey_credential"]).value = JSON.stringify(answer);
    var rememberId = form.getAttribute("data-passkey-remember");
    var remember = rememberId ? document.getElementById(rememberId) : null;
    var rememberField = field(form, ["passkey_remember"]);
    if (remember && rememberField) {
      rememberField.value = remember.checked ? "1" : "";
    }
    form.submit();
  }

  /* The autofill request waiting on the sign-in page: {controller, promise}. */
  var autofill = null;

  function stopAutofill() {
    if (!autofill) {
      return Promise.resolve();
    }
    var pending = autofill;
    autofill = null;
    pending.controller.abort();
    return pending.promise.catch(function () {});
  }

  function ceremony(form, mediation) {
    return fetchOptions(form).then(function (json) {
      if (form.getAttribute("data-passkey") === "create") {
        return navigator.credentials
          .create({ publicKey: creationOptions(json) })
          .then(function (credential) {
            submitWith(form, registrationJSON(credential));
          });
      }
      var request = { publicKey: requestOptions(json) };
      var promise;
      if (mediation) {
        var controller = new AbortController();
        request.mediation = mediation;
        request.signal = controller.signal;
        promise = navigator.credentials.get(request);
        autofill = { controller: controller, promise: promise };
      } else {
        promise = navigator.credentials.get(request);
      }
      return promise.then(function (credential) {
        if (credential) {
          submitWith(form, authenticationJSON(credential));
        }
      });
    });
  }

  function explain(form, error) {
    var name = error && error.name;
    if (name === "AbortError") {
      return;
    }
    if (name === "NotAllowedError") {
      say(form, "cancelled");
    } else if (name === "InvalidStateError") {
      say(form, "exists");
    } else if (name === "OptionsError") {
      say(form, "reload");
    } else {
      say(form, "failed");
    }
  }

  function setUp(form) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-passkey-button]"), function (b) {
      b.hidden = false;
    });
    form.addEventListener("submit", function (event) {
      var answer = field(form, ["credential", "passkey_credential"]);
      if (answer && answer.value) {
        return; // the ceremony is done: the form goes to the server
      }
      event.preventDefault();
      say(form, "waiting");
      stopAutofill()
        .then(function () {
          return ceremony(form, null);
        })
        .catch(function (error) {
          explain(form, error);
        });
    });
    if (
      form.hasAttribute("data-passkey-autofill") &&
      window.PublicKeyCredential.isConditionalMediationAvailable
    ) {
      window.PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) {
          // Autofill is an offer: being ignored, dismissed or unavailable here is not a
          // problem to report (the button reports its own).
          ceremony(form, "conditional").catch(function () {});
        }
      });
    }
  }

  var forms = document.querySelectorAll("form[data-passkey]");
  if (!forms.length || !window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-passkey-unsupported]"), function (p) {
    p.hidden = true;
  });
  Array.prototype.forEach.call(forms, setUp);
})();
