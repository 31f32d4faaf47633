"""The local web viewer (``sessionsgit serve``, the ``sessionsgit[serve]`` extra): Flask with
Jinja templates and plain HTML forms, no JavaScript. Nothing outside this package imports it,
so ``import sessionsgit`` never loads the web stack."""
