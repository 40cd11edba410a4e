(function () {
  var status = document.getElementById("live-status");
  function refresh() {
    // The whole page again; its table and alerts replace these (one request, one truth)
    fetch(location.href, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["summary-rows", "alerts-box"].forEach(function (id) {
          document.getElementById(id).innerHTML = fresh.getElementById(id).innerHTML;
        });
      });
  }
  if (window.EventSource) {
    var es = new EventSource(status.dataset.streamUrl);
    es.addEventListener("open", function () { status.dataset.live = "on"; });
    es.addEventListener("changed", function () { refresh(); });
    es.addEventListener("error", function () { status.dataset.live = "retrying"; });
  } else {
    setInterval(refresh, 5000);
  }
})();
