# gunicorn reads this file from the working directory: `gunicorn app:app`.

# Ticket and join links (/t/<order id>.<signature>, /j/...) open an attendee's order: the access and error logs
# keep the order id and drop the signature (webinar_pay/logs.py).
logger_class = "webinar_pay.logs.GunicornLogger"
