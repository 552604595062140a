// Draws one ECharts line chart per KPI from the page's JSON data block (no inline script:
// the Content-Security-Policy runs only files served by the hub).
(function () {
  "use strict";
  var block = document.getElementById("trend-data");
  if (!block || !window.echarts) { return; }
  var charts = JSON.parse(block.textContent);
  charts.forEach(function (chart) {
    var el = document.getElementById("chart-" + chart.kpi);
    if (!el) { return; }
    // SVG: the points are elements a person (or a test) can inspect.
    var instance = window.echarts.init(el, null, { renderer: "svg" });
    instance.setOption({
      animation: false,
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v == null ? "-" : v + chart.unit; } },
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 32, bottom: 32 },
      xAxis: { type: "category", data: chart.periods },
      yAxis: { type: "value", axisLabel: { formatter: "{value}" + chart.unit } },
      series: chart.series.map(function (s, i) {
        return { name: s.name, type: "line", data: s.data, connectNulls: false,
                 showSymbol: true, lineStyle: { width: i === 0 ? 3 : 1.5 } };
      })
    });
    el.setAttribute("data-rendered", String(chart.series[0].data.filter(function (v) { return v != null; }).length));
    window.addEventListener("resize", function () { instance.resize(); });
  });
})();
