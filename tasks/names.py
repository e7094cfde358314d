"""Task names: the API enqueues by name, so it never imports worker code."""

SYNTHESIZE = "tts.synthesize"
DELIVER_WEBHOOK = "service.deliver_webhook"
