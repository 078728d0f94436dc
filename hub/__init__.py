"""The department data-sharing hub: services and the composition root."""
