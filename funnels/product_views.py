"""Products: what funnels sell. Sold products are archived, never deleted."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import RestrictedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import add_service_errors
from accounts.tenancy import workspace_view

from . import services
from .models import Product
from .money import format_money, minor_per_unit
from .product_forms import ProductForm


@workspace_view
def product_list(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "active")
    products = Product.objects.for_workspace(request.workspace)
    products = (
        products.filter(archived_at__isnull=False)
        if show == "archived"
        else products.active()
    )
    return render(
        request, "funnels/product_list.html", {"products": products, "show": show}
    )


def _amount(value: int | None, currency: str) -> str:
    if value is None:
        return ""
    per = minor_per_unit(currency)
    return str(value) if per == 1 else f"{value // per}.{value % per:02d}"


def _initial(product: Product) -> dict:
    return {
        "name": product.name,
        "description": product.description,
        "price": _amount(product.price_minor, product.currency),
        "compare_at": _amount(product.compare_at_minor, product.currency),
        "currency": product.currency,
        "billing": product.billing,
        "interval": product.interval,
        "image_url": product.image_url,
    }


@workspace_view
def product_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    product = None
    if pk is not None:
        product = get_object_or_404(Product, pk=pk, workspace=request.workspace)
    form = ProductForm(
        request.POST or None, initial=_initial(product) if product else None
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            product = services.product_save(
                workspace=request.workspace,
                product=product,
                name=data["name"],
                description=data["description"],
                price_minor=data["price_minor"],
                compare_at_minor=data["compare_at_minor"],
                currency=data["currency"],
                billing=data["billing"],
                interval=data["interval"],
                image_url=data["image_url"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            price = format_money(product.price_minor, product.currency)
            messages.success(request, f"Saved “{product.name}” at {price}.")
            return redirect("products:list")
    return render(
        request,
        "funnels/product_form.html",
        {"form": form, "product": product},
        status=422 if form.errors else 200,
    )


@workspace_view
@require_POST
def product_archive(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk, workspace=request.workspace)
    archived = request.POST.get("archived", "1") == "1"
    services.product_archive(product=product, archived=archived)
    verb = "archived" if archived else "restored"
    messages.success(request, f"“{product.name}” {verb}.")
    return redirect("products:list")


@workspace_view
@require_POST
def product_delete(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk, workspace=request.workspace)
    try:
        services.product_delete(product=product)
    except RestrictedError:
        messages.error(
            request,
            f"“{product.name}” has been sold or is used by a funnel step, so it can "
            "only be archived.",
        )
    else:
        messages.success(request, f"“{product.name}” deleted.")
    return redirect("products:list")
