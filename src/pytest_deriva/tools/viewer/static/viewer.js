// Draws the plotly figures the page carries as JSON in data-figure attributes, with the
// plotly.js this viewer serves itself (no other site is asked for anything).
document.querySelectorAll("[data-figure]").forEach((element) => {
  const figure = JSON.parse(element.dataset.figure);
  Plotly.newPlot(element, figure.data, figure.layout, { displaylogo: false, responsive: true });
});
