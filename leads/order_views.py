"""Orders admin: list with filters, detail, refunds, CSV export; offers per step."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import FilterDateField
from accounts.tenancy import workspace_view
from funnels import selectors as funnel_selectors
from funnels import services as funnel_services
from funnels.models import Funnel, Product, Step, StepOffer
from funnels.money import CURRENCIES, format_money, parse_money

from . import checkout, selectors, services
from .exports import csv_response
from .models import FollowUpEmail, Order, OrderStatus


class OrderFilterForm(forms.Form):
    funnel = forms.IntegerField(required=False, min_value=1)
    product = forms.IntegerField(required=False, min_value=1)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *OrderStatus.choices]
    )
    date_from = FilterDateField(required=False)
    date_to = FilterDateField(required=False)
    show = forms.ChoiceField(required=False, choices=selectors.ORDER_SHOW)


def _order_filters(
    request: HttpRequest,
) -> tuple[OrderFilterForm, selectors.OrderFilters]:
    form = OrderFilterForm(request.GET or None)
    if not form.is_valid():
        return form, selectors.OrderFilters()
    d = form.cleaned_data
    return form, selectors.OrderFilters(
        funnel_id=d["funnel"],
        product_id=d["product"],
        status=d["status"] or "",
        date_from=d["date_from"],
        date_to=d["date_to"],
        show=d["show"] or "",
    )


@workspace_view
def order_list(request: HttpRequest) -> HttpResponse:
    form, filters = _order_filters(request)
    orders = selectors.order_queryset(workspace=request.workspace, filters=filters)
    return render(
        request,
        "leads/order_list.html",
        {
            "form": form,
            "filters": filters,
            "orders": orders.prefetch_related("items")[:200],
            "query": request.GET.urlencode(),
            "funnels": Funnel.objects.for_workspace(request.workspace),
            "products": Product.objects.for_workspace(request.workspace),
            "statuses": OrderStatus.choices,
            "show_choices": selectors.ORDER_SHOW,
        },
    )


@workspace_view
def order_export_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, filters = _order_filters(request)
    return csv_response(
        header=[label for _, label in selectors.ORDER_CSV_COLUMNS],
        rows=selectors.order_export_rows(workspace=request.workspace, filters=filters),
        name="orders",
    )


@workspace_view
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = selectors.order_get(workspace=request.workspace, pk=pk)
    if order is None:
        raise Http404("No such order")
    return render(
        request,
        "leads/order_detail.html",
        {
            "order": order,
            "refundable": order.paid_minor - order.refunded_minor,
            "variants": selectors.order_variants(
                workspace=request.workspace, variants=order.variants
            ),
        },
    )


@workspace_view
@require_POST
def order_refund(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(Order, pk=pk, workspace=request.workspace)
    try:
        amount = parse_money(request.POST.get("amount", ""), order.currency)
        checkout.order_refund(
            workspace=request.workspace, order=order, amount_minor=amount
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Refunded {format_money(amount, order.currency)}.")
    return redirect("leads:order_detail", pk=order.pk)


class OfferForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.none())
    bump_product = forms.ModelChoiceField(
        queryset=Product.objects.none(), required=False, label="Order bump"
    )
    bump_headline = forms.CharField(max_length=200, required=False)
    bump_description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False
    )

    def __init__(self, *args, workspace, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        qs = Product.objects.for_workspace(workspace).active()
        self.fields["product"].queryset = qs
        self.fields["bump_product"].queryset = qs

    def clean(self) -> dict:
        data = super().clean()
        main, bump = data.get("product"), data.get("bump_product")
        if main and bump and main.currency != bump.currency:
            self.add_error(
                "bump_product",
                f"The bump is priced in {bump.currency}; the product in "
                f"{main.currency}. Use one currency per order.",
            )
        return data


class FollowUpForm(forms.Form):
    is_enabled = forms.BooleanField(required=False, label="Send a follow-up e-mail")
    subject = forms.CharField(max_length=200, required=False)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="Merge fields: {{ first_name }}, {{ last_name }}, {{ email }}.",
    )


@workspace_view
def step_offer(request: HttpRequest, step_pk: int) -> HttpResponse:
    """What an order / upsell / downsell step sells, and an opt-in's follow-up."""
    step = get_object_or_404(
        Step.objects.select_related("funnel"), pk=step_pk, workspace=request.workspace
    )
    offer = StepOffer.objects.filter(step=step).first()
    follow_up = FollowUpEmail.objects.filter(step=step).first()
    sells = step.kind in {"order", "upsell", "downsell"}
    offer_form = OfferForm(
        request.POST if request.POST.get("form") == "offer" else None,
        workspace=request.workspace,
        initial={
            "product": offer.product_id if offer else None,
            "bump_product": offer.bump_product_id if offer else None,
            "bump_headline": offer.bump_headline if offer else "",
            "bump_description": offer.bump_description if offer else "",
        },
    )
    follow_form = FollowUpForm(
        request.POST if request.POST.get("form") == "follow_up" else None,
        initial={
            "is_enabled": follow_up.is_enabled if follow_up else False,
            "subject": follow_up.subject if follow_up else "",
            "body": follow_up.body if follow_up else "",
        },
    )
    if request.method == "POST":
        if request.POST.get("form") == "offer" and offer_form.is_valid():
            d = offer_form.cleaned_data
            try:
                funnel_services.step_offer_save(
                    step=step,
                    product=d["product"],
                    bump_product=d["bump_product"],
                    bump_headline=d["bump_headline"],
                    bump_description=d["bump_description"],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    if field in offer_form.fields:
                        offer_form.add_error(field, errors)
                    else:  # about the step: the page may not show the offer form
                        messages.error(request, " ".join(errors))
            else:
                if step.funnel.is_published:
                    messages.success(
                        request,
                        "Offer saved. The live page keeps the offer it was published "
                        "with until you publish the funnel again.",
                    )
                else:
                    messages.success(request, "Offer saved.")
                return redirect("leads:step_offer", step_pk=step.pk)
        if request.POST.get("form") == "follow_up" and follow_form.is_valid():
            d = follow_form.cleaned_data
            try:
                services.follow_up_save(
                    step=step,
                    is_enabled=d["is_enabled"],
                    subject=d["subject"],
                    body=d["body"],
                )
            except ValidationError as exc:
                follow_form.add_error(None, exc.messages)
            else:
                messages.success(request, "Follow-up e-mail saved.")
                return redirect("leads:step_offer", step_pk=step.pk)
    return render(
        request,
        "leads/step_offer.html",
        {
            "step": step,
            "sells": sells,
            "offer_form": offer_form,
            "follow_form": follow_form,
            "currencies": CURRENCIES,
            "unpublished_offers": funnel_selectors.funnel_offers_unpublished(
                funnel=step.funnel
            ),
            "unpublished_funnel": step.funnel,
        },
    )
