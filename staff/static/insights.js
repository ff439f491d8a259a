// Draws the insights page's charts (Chart.js, served from web/node_modules) from the
// tables beside them: each <canvas data-table="ID"> charts table#ID, its rows' headers as
// labels and each numeric column (a cell's data-value, else its text) as a series.
// The tables stay on the page: they are what screen readers read.
(function () {
  "use strict";
  if (typeof window.Chart === "undefined") {
    return;
  }
  var colours = ["#1d3557", "#c77d00", "#2a9d8f", "#b00020", "#6d597a"];

  function number(cell) {
    var text = cell.getAttribute("data-value") || cell.textContent || "";
    var value = parseFloat(text.replace(/[^0-9.\-]/g, ""));
    return isNaN(value) ? 0 : value;
  }

  function read(table) {
    var wanted = parseInt(table.getAttribute("data-columns") || "0", 10);
    var heads = Array.prototype.slice.call(table.querySelectorAll("thead th")).slice(1);
    if (wanted) {
      heads = heads.slice(0, wanted);
    }
    var rows = Array.prototype.filter.call(table.querySelectorAll("tbody tr"), function (row) {
      return row.querySelector("th");
    });
    return {
      labels: rows.map(function (row) { return row.querySelector("th").textContent.trim(); }),
      datasets: heads.map(function (head, column) {
        return {
          label: head.textContent.trim(),
          data: rows.map(function (row) { return number(row.querySelectorAll("td")[column]); }),
          backgroundColor: colours[column % colours.length]
        };
      })
    };
  }

  document.querySelectorAll("canvas[data-table]").forEach(function (canvas) {
    var table = document.getElementById(canvas.getAttribute("data-table"));
    if (!table) {
      return;
    }
    var data = read(table);
    var kind = canvas.getAttribute("data-kind") || "bar";
    if (kind === "doughnut" && data.datasets.length) {
      data.datasets[0].backgroundColor = colours.slice(0, data.labels.length);
    }
    var options = { responsive: true, maintainAspectRatio: false, animation: false };
    if (canvas.getAttribute("data-horizontal") === "true") {
      options.indexAxis = "y";
    }
    canvas.chart = new window.Chart(canvas, { type: kind, data: data, options: options });
    canvas.setAttribute("data-drawn", "true");
  });
})();
