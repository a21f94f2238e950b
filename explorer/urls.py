from django.urls import path

from explorer import views

urlpatterns = [
    path("", views.ExplorerView.as_view(), name="explorer"),
    path("explorer/read-key", views.ReadKeyView.as_view(), name="explorer-read-key"),
]
