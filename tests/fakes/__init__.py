"""Local fakes of third-party services used by the test suite."""

from .fake_stripe import FakeStripe, RecordedRequest, SignedEvent

__all__ = ["FakeStripe", "RecordedRequest", "SignedEvent"]
