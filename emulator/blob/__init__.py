"""The HTTPS blob endpoint: a transparent proxy to Azurite with Azure's asynchronous copies and faults.

Choices where Azurite and Azure differ (documented for tests and the benchmark):

- A Copy Blob that Azurite finished instantly is answered ``202`` with ``x-ms-copy-status: pending``; the
  copy stays pending for ``copy_seconds`` (or ``size / copy_bandwidth``) with a growing ``x-ms-copy-progress``.
- While a copy is pending, reading the destination's data (Get Blob) and writing it (Put Blob, Put Page, ...)
  answer ``409 PendingCopyOperation``; its properties and listings show the copy state.
- A copy that ends ``failed`` or ``aborted`` leaves the destination with zero length (its data is deleted in
  Azurite and the blob recreated empty, with its type, content type and metadata), as Azure does on abort.
- Requests that Azurite itself makes to check a cross-account copy source (``User-Agent: axios/...``) are
  counted apart (``internal_requests``) and never get faults.

Modules: ``operations`` (what a request is), ``copies`` (the emulated copy states), ``asgi`` and ``responses``
(ASGI plumbing and Azure Storage answers), ``upstream`` (Azurite over HTTP), ``connections`` (resetting a client's
TCP connection), ``proxy`` (the ASGI app tying them together).
"""
