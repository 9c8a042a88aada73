// Starts Swagger UI on the OpenAPI document one level up (/api/schema/). A file of its own, not
// an inline script, so that the page's Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: new URL("../", window.location.href).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
