// Starts Swagger UI on this API's spec (a file of its own: the page allows no inline script).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
