"""RabbitMQ contracts, topology and publishing shared by the API and the processor."""
