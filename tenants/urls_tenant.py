from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from tenants.views import auth

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("auth/handoff/<str:token>/", auth.handoff, name="handoff"),
]
