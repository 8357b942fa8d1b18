"""`imagine-bot demo`: a scripted Slack conversation through the real app, as a transcript."""
