"""The explorer's page. It reads events through the API (GET /events, /stats, /events/stream) from the browser."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import redirect, render
from django.views import View

from events.auth import forget_read_key, remember_read_key, session_may_read


class ExplorerView(View):
    def get(self, request):
        return render(request, "explorer/index.html", _page_context(request))


class ReadKeyView(View):
    """Enter a read key for this browser session, or forget it (the form shown while reads are protected)."""

    def post(self, request):
        if "forget" in request.POST:
            forget_read_key(request.session)
            return redirect("explorer")
        if remember_read_key(request.session, request.POST.get("key", "")):
            return redirect("explorer")
        context = {**_page_context(request), "key_error": "That is not an active API key with the `read` scope."}
        return render(request, "explorer/index.html", context, status=400)


def _page_context(request) -> dict:
    protected = settings.LOGGREGATOR["PROTECT_READS"]
    return {"reads_protected": protected, "may_read": not protected or session_may_read(request)}
