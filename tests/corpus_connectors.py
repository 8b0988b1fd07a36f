"""Fake connectors for the Java delegates and external-task topics of the reference corpus.

A fake is a registered callable behind the same interface as a real connector (``connectors/services.py``):
keyword parameters in, a JSON-serializable result out. Each records its calls in ``CALLS`` so tests can see
what the engine passed."""

CALLS = []


def _recorder(name, result):
    def connector(**params):
        CALLS.append((name, params))
        return dict(result) if isinstance(result, dict) else result

    connector.__name__ = name
    return connector


# name (class name, bean name or topic) -> what the fake answers
FAKES = {
    # camunda-bpm-examples startevent/message-start: correlates the message that starts Message_Start_Process
    "org.camunda.bpm.example.event.message.InstantiateProcessByMessageDelegate": {"messageSent": True},
    # camunda-bpm-examples clients/java/order-handling: external tasks
    "invoiceCreator": {"invoiceId": "INV-1"},
    "invoiceArchiver": {"archived": True},
    # spring-boot-starter external-task-client loan-granting
    "creditScoreChecker": {"score": 9},
    "loanGranter": None,
    "requestRejecter": None,
    # camunda-bpm-platform examples/invoice (Java delegates)
    "ArchiveInvoiceService": None,
    "NotifyCreditorService": None,
    # MIWG reference C.1.x (delegateExpression #{archiveService}) and C.9.x (external topic emailService)
    "archiveService": None,
    "emailService": {"emailSent": True},
    "svnService": None,
}


def fake_services():
    """A services registry: the built-in connectors plus every fake."""
    from connectors.services import default_services

    services = default_services()
    services.update({name: _recorder(name, result) for name, result in FAKES.items()})
    return services
