"""The quick complaint: form, abuse control, durable storage and the receipt."""
