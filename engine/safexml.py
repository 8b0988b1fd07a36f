"""Parsing XML that comes from outside (uploaded BPMN, DMN): never a DTD, never an entity, never the
network, never more than a size limit. SpiffWorkflow only ever sees trees parsed here."""

from lxml import etree

from .errors import Problem


class UnsafeXml(Exception):
    """The document was refused; ``problem`` says where and why."""

    def __init__(self, problem):
        super().__init__(str(problem))
        self.problem = problem


def _parser():
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(data, filename, max_bytes):
    """Parse ``data`` (bytes) from ``filename``; raise UnsafeXml naming file and line on any problem."""
    if len(data) > max_bytes:
        raise UnsafeXml(Problem(filename, None, None, f"file is {len(data)} bytes, the limit is {max_bytes}"))
    head = data[:4096].lstrip()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        at = data.find(b"<!DOCTYPE") if b"<!DOCTYPE" in data else data.find(b"<!ENTITY")
        line = data[:at].count(b"\n") + 1
        column = at - data.rfind(b"\n", 0, at)
        raise UnsafeXml(Problem(filename, line, None, "a DOCTYPE or ENTITY declaration is not allowed in uploads",
                                column=column))
    if not head.startswith(b"<"):
        raise UnsafeXml(Problem(filename, 1, None, "not an XML document"))
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or None
        column = exc.position[1] if line and exc.position and exc.position[1] else None
        raise UnsafeXml(Problem(filename, line, None, f"XML syntax error: {exc.msg}", column=column)) from None
    return etree.ElementTree(root)
