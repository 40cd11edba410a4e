(function () {
  // Live updates: the server says "changed", the page fetches the rows again.
  var status = document.getElementById("live-status");
  var rowsUrl = status.dataset.rowsUrl;
  function refresh() {
    fetch(rowsUrl, {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.text() : Promise.reject(r.status);
    }).then(function (html) {
      document.getElementById("today-rows").innerHTML = html;
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
