"""HTTP plumbing both APIs share: problem answers, correlation ids, body limits, auth."""
