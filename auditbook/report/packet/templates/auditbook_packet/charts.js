/* auditbook packet: draws a page's charts with the packet's one shared plotly.js (assets/plotly.min.js,
   beside this file), loaded only after the page has loaded, so its text and tables are readable first.
   Each chart is a div with an id and its figure as JSON in <script type="application/json" data-figure=ID>
   (data, never run). No network: the packet is opened offline. */
(function () {
  "use strict";
  var base = document.currentScript.src.replace(/charts\.js([?#].*)?$/, "");

  function drawAll() {
    var specs = document.querySelectorAll('script[type="application/json"][data-figure]');
    if (!specs.length) { return; }
    var plotly = document.createElement("script");
    plotly.src = base + "plotly.min.js";
    plotly.onload = function () {
      Array.prototype.forEach.call(specs, function (spec) {
        var div = document.getElementById(spec.getAttribute("data-figure"));
        if (!div) { return; }
        var fig = JSON.parse(spec.textContent);
        var config = fig.config || {};
        config.displaylogo = false;
        config.responsive = true;
        window.Plotly.newPlot(div, fig.data || [], fig.layout || {}, config);
      });
    };
    document.head.appendChild(plotly);
  }

  if (document.readyState === "complete") {
    window.setTimeout(drawAll, 0);
  } else {
    window.addEventListener("load", function () { window.setTimeout(drawAll, 0); });
  }
}());
