(function () {
  "use strict";
  // The report's own script. Its data comes from the JSON element #wh-data (escaped for a
  // script element by the renderer); nothing here writes HTML: tooltips are rich text on the
  // canvas and labels are canvas text, so no evidence string is ever parsed as markup.
  var data = JSON.parse(document.getElementById("wh-data").textContent);
  var L = data.labels;
  var state = { timeline: null, graph: null, ready: 0 };
  window.whReport = state;

  function plain(s) {
    // Rich text treats {style|...} as markup for styles: keep evidence out of that syntax.
    return String(s == null ? "" : s).replace(/[{}|]/g, function (c) {
      return c === "{" ? "\uff5b" : c === "}" ? "\uff5d" : "\uff5c";
    });
  }
  function done() {
    state.ready += 1;
    if (state.ready >= 2) { document.documentElement.setAttribute("data-charts-ready", "1"); }
  }
  var sevColor = { critical: "#b42318", high: "#dc6803", medium: "#eaaa08", low: "#2e90fa", info: "#98a2b3" };
  var statusColor = { infected: "#d92d20", suspicious: "#f79009", clean: "#12b76a", unknown: "#98a2b3" };

  function timeline() {
    var el = document.getElementById("wh-timeline");
    var chart = echarts.init(el, null, { renderer: "canvas" });
    state.timeline = chart;
    var hosts = [];
    data.timeline.infections.forEach(function (e) { if (hosts.indexOf(e.host) < 0) { hosts.push(e.host); } });
    data.timeline.events.forEach(function (e) { if (hosts.indexOf(e.host) < 0) { hosts.push(e.host); } });
    var series = [];
    ["critical", "high", "medium", "low", "info"].forEach(function (sev) {
      var points = data.timeline.events.filter(function (e) { return e.severity === sev; }).map(function (e) {
        return { value: [e.ts, hosts.indexOf(e.host)], host: e.host, title: e.title, ts: e.ts };
      });
      if (points.length) {
        series.push({ name: L["sev." + sev], type: "scatter", symbolSize: 9, itemStyle: { color: sevColor[sev] },
                      data: points });
      }
    });
    series.push({
      name: L.infected_at, type: "scatter", symbol: "diamond", symbolSize: 16, itemStyle: { color: "#101828" },
      data: data.timeline.infections.map(function (e) {
        return { value: [e.ts, hosts.indexOf(e.host)], host: e.host, title: L.infected_at, ts: e.ts };
      })
    });
    chart.on("finished", function once() { chart.off("finished", once); done(); });
    chart.setOption({
      animation: false,
      legend: { top: 4 },
      grid: { left: 110, right: 24, top: 36, bottom: 56 },
      tooltip: {
        renderMode: "richText", trigger: "item",
        formatter: function (p) { return plain(p.data.ts) + "  " + plain(p.data.host) + "\n" + plain(p.data.title); }
      },
      dataZoom: [{ type: "slider", xAxisIndex: 0, bottom: 8 }, { type: "inside", xAxisIndex: 0 }],
      xAxis: { type: "time", axisLabel: { hideOverlap: true } },
      yAxis: { type: "category", data: hosts, inverse: true, axisLabel: { formatter: function (v) { return plain(v); } } },
      series: series
    });
  }

  function graph() {
    var el = document.getElementById("wh-graph");
    var chart = echarts.init(el, null, { renderer: "canvas" });
    state.graph = chart;
    var cats = ["infected", "suspicious", "clean", "unknown"];
    var nodes = data.graph.nodes.map(function (n) {
      return {
        id: n.id, name: n.id, category: Math.max(0, cats.indexOf(n.status)),
        symbolSize: n.patient_zero ? 46 : n.spreader ? 30 : 20,
        symbol: n.patient_zero ? "diamond" : "circle",
        itemStyle: n.patient_zero ? { borderColor: "#101828", borderWidth: 3 } : undefined,
        info: n
      };
    });
    var links = data.graph.edges.map(function (e) {
      return { source: e.source, target: e.target, info: e,
               lineStyle: { type: e.kinds.indexOf("exploit") >= 0 ? "solid" : "dashed" } };
    });
    chart.on("finished", function once() { chart.off("finished", once); done(); });
    chart.setOption({
      animation: false,
      legend: { top: 4, data: cats.map(function (c) { return L["status." + c]; }) },
      tooltip: {
        renderMode: "richText", trigger: "item",
        formatter: function (p) {
          if (p.dataType === "edge") {
            var e = p.data.info;
            return plain(e.source) + " \u2192 " + plain(e.target) + "\n" +
              e.kinds.map(function (k) { return plain(L["edge." + k]); }).join(", ") + "\n" + plain(e.first_seen || "");
          }
          var n = p.data.info;
          var lines = [plain(n.id) + (n.ip && n.ip !== n.id ? "  " + plain(n.ip) : ""),
                       plain(L.status) + ": " + plain(L["status." + n.status] || n.status)];
          if (n.family) { lines.push(plain(L.family) + ": " + plain(n.family)); }
          if (n.first_seen) { lines.push(plain(L.first_seen) + ": " + plain(n.first_seen)); }
          if (n.patient_zero) { lines.push(plain(L.patient_zero)); }
          if (n.spreader) { lines.push(plain(L.spreader)); }
          return lines.join("\n");
        }
      },
      series: [{
        type: "graph", layout: "force", roam: true, draggable: true,
        force: { repulsion: 260, edgeLength: [60, 160], gravity: 0.08, layoutAnimation: false },
        categories: cats.map(function (c) { return { name: L["status." + c], itemStyle: { color: statusColor[c] } }; }),
        label: { show: true, position: "right", formatter: function (p) { return plain(p.name); } },
        edgeSymbol: ["none", "arrow"], edgeSymbolSize: 9,
        lineStyle: { color: "#475467", width: 1.5, curveness: 0.1, opacity: 0.8 },
        emphasis: { focus: "adjacency" },
        data: nodes, links: links
      }]
    });
  }

  timeline();
  graph();
  window.addEventListener("resize", function () { state.timeline.resize(); state.graph.resize(); });
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
    state.timeline.resize(); state.graph.resize();
  });
  var button = document.getElementById("wh-stix-download");
  if (button) {
    button.addEventListener("click", function () {
      var text = JSON.stringify(JSON.parse(document.getElementById("wh-stix").textContent), null, 1);
      var a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      a.download = "wormhunt-stix.json";
      document.body.appendChild(a);
      a.click();
      a.remove();
    });
  }
})();
