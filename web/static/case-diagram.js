// Draws the case's BPMN model with bpmn-js (served by this app) and marks completed, active and waiting
// elements. No inline script, no eval: the page's Content-Security-Policy allows only 'self'.
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("diagram");
    if (!el || !window.BpmnJS) { return; }
    var states = JSON.parse(el.getAttribute("data-states") || "{}");
    var viewer = new window.BpmnJS({ container: el });
    fetch(el.getAttribute("data-url"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        canvas.zoom("fit-viewport");
        [["completed", "done"], ["active", "active"], ["waiting", "waiting"]].forEach(function (pair) {
          (states[pair[0]] || []).forEach(function (id) {
            if (registry.get(id)) { canvas.addMarker(id, pair[1]); }
          });
        });
        el.setAttribute("data-ready", "1");
      })
      .catch(function (err) {
        el.textContent = "Das Diagramm kann nicht angezeigt werden (" + err.message + ").";
      });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
