(function () {
  // Live updates: the server says "changed", the page fetches the rows again. The URLs,
  // day and CSRF token come from data attributes (the CSP allows no inline script).
  var status = document.getElementById("live-status");
  var roll = document.getElementById("roll-rows");
  var rollForm = document.getElementById("roll-form");
  function load(url, id, after) {
    fetch(url, {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.text() : Promise.reject(r.status);
    }).then(function (html) {
      document.getElementById(id).innerHTML = html;
      if (after) { after(); }
    });
  }
  function refresh() {
    load(status.dataset.rowsUrl, "today-rows");
    if (!roll) { return; }
    // Keep the keyboard where it was when the roll's rows are replaced
    var focused = document.activeElement && roll.contains(document.activeElement)
      ? document.activeElement.name : null;
    load(rollForm.dataset.rowsUrl, "roll-rows", function () {
      if (!focused) { return; }
      var again = roll.querySelector("input[name='" + focused + "']:checked") ||
        roll.querySelector("input[name='" + focused + "']");
      if (again) { again.focus(); }
    });
  }
  function save(input) {
    var form = new FormData();
    form.append("day", rollForm.dataset.day);
    form.append(input.name, input.value);
    fetch(rollForm.action, {
      method: "POST", body: form, credentials: "same-origin",
      headers: {"X-CSRF-Token": rollForm.dataset.csrf, "Accept": "application/json"}
    }).then(function (r) {
      if (!r.ok) { return Promise.reject(r.status); }
      input.closest("tr").dataset.saved = input.value;
      refresh();
    }).catch(function () { status.dataset.live = "save-failed"; });
  }
  if (roll) {
    roll.addEventListener("change", function (e) {
      if (e.target.type === "radio") { save(e.target); }
    });
    var keys = {p: "present", a: "absent", l: "late"};
    roll.addEventListener("keydown", function (e) {
      var value = keys[(e.key || "").toLowerCase()];
      if (!value || e.target.type !== "radio") { return; }
      var pick = e.target.closest("tr").querySelector("input[value='" + value + "']");
      if (pick && !pick.checked) { pick.checked = true; pick.focus(); save(pick); }
      e.preventDefault();
    });
  }
  if (window.EventSource) {
    var es = new EventSource(status.dataset.streamUrl);
    es.addEventListener("open", function () { status.dataset.live = "on"; });
    es.addEventListener("changed", refresh);
    es.addEventListener("error", function () { status.dataset.live = "retrying"; });
  } else {
    setInterval(refresh, 5000);
  }
})();
