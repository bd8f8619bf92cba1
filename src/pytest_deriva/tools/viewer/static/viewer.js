// Draws the plotly figures the page carries as JSON in data-figure attributes, with the
// plotly.js this viewer serves itself. No button may send a figure's data to another site:
// plotly.js shows "Edit in Chart Studio" (a post to plotly's cloud) unless told not to.
const CONFIG = {
  displaylogo: false,
  responsive: true,
  showSendToCloud: false,
  showEditInChartStudio: false,
  showLink: false,
  modeBarButtonsToRemove: ["sendDataToCloud", "editInChartStudio"],
};
document.querySelectorAll("[data-figure]").forEach((element) => {
  const figure = JSON.parse(element.dataset.figure);
  Plotly.newPlot(element, figure.data, figure.layout, CONFIG);
});
