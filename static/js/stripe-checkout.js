/* Card collection with Stripe.js (PAYMENT_GATEWAY=stripe only).
 *
 * The card is typed into Stripe's own iframe and turned into a PaymentMethod by
 * Stripe; only its id (pm_...) is posted to our server, which creates and confirms
 * the PaymentIntent and checks its status itself. Card data never reaches us.
 */
(function () {
  "use strict";
  if (typeof Stripe !== "function") {
    document.querySelectorAll("[data-stripe-error]").forEach(function (el) {
      el.textContent = "The secure card field could not load. Check your connection or allow scripts from Stripe, then reload.";
      el.hidden = false;
    });
    return;
  }

  function showError(form, message) {
    var el = form.querySelector("[data-stripe-error]") ||
      document.querySelector("[data-stripe-error]");
    if (el) { el.textContent = message; el.hidden = !message; }
  }

  // Order forms: mount the Card Element, create the PaymentMethod on submit.
  document.querySelectorAll("form[data-stripe-key].of-order").forEach(function (form) {
    var stripe = Stripe(form.dataset.stripeKey);
    var card = stripe.elements().create("card", { hidePostalCode: true });
    card.mount(form.querySelector("[data-stripe-card]"));
    card.on("change", function (e) { showError(form, e.error ? e.error.message : ""); });
    var busy = false;
    form.addEventListener("submit", function (e) {
      if (form.elements.payment_method.value) return; // second pass: really submit
      e.preventDefault();
      if (busy) return;
      busy = true;
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      stripe.createPaymentMethod({
        type: "card",
        card: card,
        billing_details: {
          name: (form.elements.name && form.elements.name.value) || undefined,
          email: (form.elements.email && form.elements.email.value) || undefined
        }
      }).then(function (r) {
        if (r.error) {
          showError(form, r.error.message);
          busy = false;
          button.disabled = false;
          return;
        }
        form.elements.payment_method.value = r.paymentMethod.id;
        form.submit();
      });
    });
  });

  // 3-D Secure: let Stripe show the bank's check, then ask our server.
  document.querySelectorAll("form[data-stripe-confirm]").forEach(function (form) {
    var stripe = Stripe(form.dataset.stripeKey);
    stripe.handleNextAction({ clientSecret: form.dataset.clientSecret }).then(function (r) {
      if (r.error) { showError(form, r.error.message); return; }
      form.submit(); // the server retrieves the PaymentIntent and decides
    });
  });
})();
