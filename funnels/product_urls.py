from __future__ import annotations

from django.urls import path

from . import product_views as views

app_name = "products"

urlpatterns = [
    path("products/", views.product_list, name="list"),
    path("products/new/", views.product_edit, name="create"),
    path("products/<int:pk>/", views.product_edit, name="edit"),
    path("products/<int:pk>/archive/", views.product_archive, name="archive"),
    path("products/<int:pk>/delete/", views.product_delete, name="delete"),
]
