// The operator's dashboard (/ops/): every panel's chart from /ops/api/panels/<name>, the firing alerts from
// /ops/api/alerts, refreshed every few seconds. The server runs fixed queries; nothing here sends PromQL.
// Each chart's figure says how many data points it drew (data-points) and its state (data-state: ok,
// unavailable, error), for people and for tests alike.
(function () {
  "use strict";
  var root = document.querySelector("[data-ops]");
  if (!root || typeof uPlot === "undefined") return;
  var panelUrl = root.getAttribute("data-panel-url");
  var alertsUrl = root.getAttribute("data-alerts-url");
  var refreshMs = parseInt(root.getAttribute("data-refresh-ms"), 10) || 5000;
  var picker = root.querySelector("[data-ops-minutes]");
  var status = root.querySelector("[data-ops-status]");
  var updated = root.querySelector("[data-ops-updated]");
  var alertList = root.querySelector("[data-ops-alerts]");
  var figures = Array.prototype.slice.call(root.querySelectorAll("[data-panel]"));
  var COLORS = ["#c8102e", "#1f6feb", "#2da44e", "#bf8700", "#8250df", "#0a7b83", "#cf222e", "#57606a"];
  var charts = {};  // panel name -> {plot, labels}
  var busy = false;
  var problems = {};  // what failed in the last round, by source

  function format(unit, v) {
    if (v == null || isNaN(v)) return "–";
    if (unit === "ratio") return (v * 100).toFixed(1) + " %";
    if (unit === "s") return v < 1 ? (v * 1000).toFixed(v < 0.01 ? 2 : 0) + " ms" : v.toFixed(2) + " s";
    if (Math.abs(v) >= 100) return v.toFixed(0);
    return Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", cache: "no-store", headers: {Accept: "application/json"}})
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (body) {
          if (!resp.ok) {
            var err = (body && body.error) || {};
            var e = new Error(err.message || ("HTTP " + resp.status));
            e.code = err.code || ("http_" + resp.status);
            throw e;
          }
          return body;
        });
      });
  }

  function size(el) {
    return {width: Math.max(240, el.clientWidth || 400), height: 220};
  }

  function draw(figure, body) {
    var name = body.name, unit = body.unit;
    var el = figure.querySelector("[data-chart]");
    var labels = body.series.map(function (s) { return s.label; });
    var data = [body.timestamps].concat(body.series.map(function (s) { return s.values; }));
    var have = charts[name];
    if (have && have.labels.join("\n") === labels.join("\n")) {
      have.plot.setData(data);
    } else {
      if (have) have.plot.destroy();
      var opts = size(el);
      opts.series = [{}].concat(labels.map(function (label, i) {
        return {label: label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
                value: function (u, v) { return format(unit, v); }};
      }));
      opts.axes = [{}, {size: 64, values: function (u, ticks) { return ticks.map(function (v) { return format(unit, v); }); }}];
      opts.scales = unit === "ratio" ? {y: {range: [0, 1]}} : {y: {range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; }}};
      opts.cursor = {drag: {x: false, y: false}};
      charts[name] = {plot: new uPlot(opts, data, el), labels: labels};
    }
    figure.setAttribute("data-points", String(body.points));
    figure.setAttribute("data-series", String(labels.length));
  }

  function panelError(figure, err) {
    var box = figure.querySelector("[data-panel-error]");
    box.textContent = err.message;
    box.hidden = false;
    figure.setAttribute("data-state", err.code === "prometheus_unavailable" ? "unavailable" : "error");
  }

  function loadPanel(figure, minutes) {
    var name = figure.getAttribute("data-panel");
    return getJSON(panelUrl + encodeURIComponent(name) + "?minutes=" + minutes).then(function (body) {
      draw(figure, body);
      figure.querySelector("[data-panel-error]").hidden = true;
      figure.setAttribute("data-state", "ok");
    }, function (err) {
      panelError(figure, err);
      problems[name] = err;
    });
  }

  function alertItem(a) {
    var li = document.createElement("li");
    li.setAttribute("data-alert", a.name);
    var sev = document.createElement("span");
    sev.className = "ops-sev ops-sev-" + (a.severity || "none");
    sev.textContent = a.severity || "alert";
    var name = document.createElement("strong");
    name.textContent = a.name;
    li.appendChild(sev);
    li.appendChild(name);
    var labels = Object.keys(a.labels || {}).map(function (k) { return k + "=" + a.labels[k]; }).join(", ");
    if (labels) {
      var l = document.createElement("span");
      l.className = "ops-alert-labels";
      l.textContent = " {" + labels + "}";
      li.appendChild(l);
    }
    if (a.summary) li.appendChild(document.createTextNode(" — " + a.summary));
    if (a.since) {
      var since = document.createElement("span");
      since.className = "ops-alert-since";
      since.textContent = " since " + new Date(a.since).toLocaleTimeString();
      li.appendChild(since);
    }
    if (a.runbook) {
      var rb = document.createElement("span");
      rb.className = "ops-alert-runbook";
      rb.textContent = a.runbook;
      li.appendChild(rb);
    }
    return li;
  }

  function loadAlerts() {
    return getJSON(alertsUrl).then(function (body) {
      alertList.textContent = "";
      if (!body.alerts.length) {
        var none = document.createElement("li");
        none.className = "ops-alert-none";
        none.textContent = "None firing.";
        alertList.appendChild(none);
      }
      body.alerts.forEach(function (a) { alertList.appendChild(alertItem(a)); });
      alertList.setAttribute("data-count", String(body.alerts.length));
    }, function (err) {
      problems.alerts = err;
      alertList.setAttribute("data-count", "");
      alertList.textContent = "";
      var li = document.createElement("li");
      li.className = "ops-alert-none";
      li.textContent = "Alerts unknown: " + err.message;
      alertList.appendChild(li);
    });
  }

  function refresh() {
    if (busy) return;
    busy = true;
    problems = {};
    var minutes = picker ? picker.value : "15";
    var jobs = [loadAlerts()].concat(figures.map(function (f) { return loadPanel(f, minutes); }));
    Promise.all(jobs).then(function () {
      var errors = Object.keys(problems).map(function (k) { return problems[k]; });
      var down = errors.filter(function (e) { return e.code === "prometheus_unavailable"; });
      if (down.length) {
        status.textContent = "Prometheus is unavailable: " + down[0].message;
        status.hidden = false;
      } else if (errors.length) {
        status.textContent = "Some panels failed: " + errors[0].message;
        status.hidden = false;
      } else {
        status.hidden = true;
      }
      root.setAttribute("data-state", down.length ? "unavailable" : (errors.length ? "error" : "ok"));
      updated.textContent = "Updated " + new Date().toLocaleTimeString();
    }).finally(function () { busy = false; });
  }

  window.addEventListener("resize", function () {
    figures.forEach(function (f) {
      var c = charts[f.getAttribute("data-panel")];
      if (c) c.plot.setSize(size(f.querySelector("[data-chart]")));
    });
  });
  if (picker) picker.addEventListener("change", refresh);
  refresh();
  setInterval(refresh, refreshMs);
})();
