(() => {
  // Progress of a running broadcast, polled every second (kept out of the page for the CSP).
  const campaign = document.getElementById("campaign");
  const url = campaign.dataset.progressUrl;
  const labels = JSON.parse(campaign.dataset.labels);
  for (const bar of document.querySelectorAll("[data-width]")) {
    bar.style.width = bar.dataset.width + "%";
  }
  async function refresh() {
    try {
      const r = await fetch(url, {credentials: "same-origin"});
      if (!r.ok) return;
      const p = await r.json();
      document.getElementById("percent").textContent = p.percent;
      document.getElementById("percent-bar").style.width = p.percent + "%";
      const st = document.getElementById("campaign-status");
      st.textContent = labels[p.status] || p.status;
      st.dataset.status = p.status;
      for (const [k, v] of Object.entries(p.counts)) {
        const cell = document.querySelector(`#counts td[data-key="${k}"]`);
        if (cell) cell.textContent = v;
      }
      for (const k of ["emails_sent", "emails_failed"]) {
        const el = document.querySelector(`#emails [data-key="${k}"]`);
        if (el) el.textContent = p[k];
      }
      for (const q of p.tally) for (const o of q.options) {
        const bar = document.querySelector(`#tally [data-q="${q.position}"][data-digit="${o.digit}"]`);
        if (bar) bar.style.width = (q.total ? 100 * o.count / q.total : 0) + "%";
        const c = document.querySelector(`#tally [data-count-q="${q.position}"][data-count-digit="${o.digit}"]`);
        if (c) c.textContent = o.count;
      }
    } catch (e) { /* the next poll tries again */ }
  }
  setInterval(refresh, 1000);
})();
