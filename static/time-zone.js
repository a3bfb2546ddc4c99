/* Tells the portal the browser's time zone, so that times are shown in it.
 *
 * base.html loads this script only while the portal needs the zone: for a visitor, and
 * for an account that has none yet. It reads the IANA name (Intl, "Europe/Paris") and
 * posts it, with the page's CSRF token, unless it is the zone the portal already holds
 * for this browser (data-known). The next page shows times in that zone.
 *
 * Without JavaScript nothing is sent: times stay in UTC, and say so, until the consumer
 * chooses a zone in their account. No inline script: the Content-Security-Policy
 * forbids it.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !window.fetch || !window.Intl || !window.URLSearchParams) {
    return;
  }
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  if (!zone || zone === script.dataset.known) {
    return;
  }
  var body = new URLSearchParams();
  body.set("csrf_token", script.dataset.csrfToken);
  body.set("time_zone", zone);
  window
    .fetch(script.dataset.endpoint, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      redirect: "error",
    })
    .catch(function () {
      // Offline or refused: times stay as they are; the next page tries again.
    });
})();
