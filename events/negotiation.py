from rest_framework.negotiation import DefaultContentNegotiation


class FirstRendererNegotiation(DefaultContentNegotiation):
    """Answer with the view's first renderer without parsing the Accept header.

    Every view here has one way to answer (the API is JSON only), and parsing
    Accept costs a noticeable share of a single-event publish. Request parsers
    are still chosen by Content-Type (415 for anything else).
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
